/* SPDX-License-Identifier: MIT */
/*
 * The floor's autocorrelation over its history, and the variance inflation of
 * Mann-Kendall's S it implies (see detect-acf.h for why). Pure computation: O(points * lags)
 * per estimate, no allocation.
 */
#include <math.h>

#include "detect-acf.h"

/* Two-sided 95 % normal quantile: the significance bound of one autocorrelation. */
#define ACF_Z 1.959963984540054

void floor_acf_estimate(const DetectPoint *p, size_t n, FloorAcf *ret) {
        double mt = 0, mv = 0, stt = 0, stv = 0, slope, c0 = 0, bound;

        *ret = (FloorAcf) { 0 };
        if (n < ACF_MIN_POINTS)
                return;

        /* Least squares, not Theil-Sen: the line only centres the residuals. Times are taken
         * from the first point to keep the sums well conditioned. */
        for (size_t i = 0; i < n; i++) {
                mt += p[i].t - p[0].t;
                mv += p[i].v;
        }
        mt /= (double) n;
        mv /= (double) n;
        for (size_t i = 0; i < n; i++) {
                double dt = p[i].t - p[0].t - mt;
                stt += dt * dt;
                stv += dt * (p[i].v - mv);
        }
        slope = stt > 0 ? stv / stt : 0;

#define RESIDUAL(i) (p[(i)].v - mv - slope * (p[(i)].t - p[0].t - mt))
        for (size_t i = 0; i < n; i++)
                c0 += RESIDUAL(i) * RESIDUAL(i);
        if (!(c0 > 0))
                return;

        ret->n = n;
        bound = ACF_Z / sqrt((double) n);
        for (double l = 1; l <= (double) n / 4 && ret->n_lags < ACF_MAX_LAGS; l = ceil(l * M_SQRT2)) {
                size_t lag = (size_t) l;
                double c = 0;

                for (size_t i = 0; i + lag < n; i++)
                        c += RESIDUAL(i) * RESIDUAL(i + lag);
                /* Divided by the full sum of squares (the usual biased estimator): it shrinks
                 * the long lags, whose few products are the noisiest. */
                ret->lag[ret->n_lags] = l;
                ret->rho[ret->n_lags] = c / c0;
                ret->n_lags++;
                if (c / c0 < bound)
                        break;
        }
#undef RESIDUAL
}

double floor_acf_at(const FloorAcf *acf, double lag) {
        double l0 = 0, r0 = 1;

        if (lag <= 0)
                return 1;
        for (unsigned i = 0; i < acf->n_lags; i++) {
                if (lag <= acf->lag[i])
                        return r0 + (acf->rho[i] - r0) * (lag - l0) / (acf->lag[i] - l0);
                l0 = acf->lag[i];
                r0 = acf->rho[i];
        }
        return 0;
}

double floor_acf_variance_factor(const FloorAcf *acf, size_t n) {
        double nn = (double) n, sum = 0, f;

        if (n < 4 || acf->n == 0)
                return 1;
        for (size_t k = 1; k + 2 < n; k++) {
                double kk = (double) k, rho = floor_acf_at(acf, kk);

                if (kk > acf->lag[acf->n_lags - 1])
                        break; /* 0 from here on */
                sum += (nn - kk) * (nn - kk - 1) * (nn - kk - 2) * rho;
        }
        f = 1 + 2 / (nn * (nn - 1) * (nn - 2)) * sum;
        return f > 1 ? f : 1;
}
