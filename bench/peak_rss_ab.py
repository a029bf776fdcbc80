#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Peak RSS of a workload with no agent, with the agent of an earlier revision and with this
tree's agent, in alternating runs: for a change to the agent that moves memory, side by side.

    /usr/bin/python3 bench/peak_rss_ab.py --builddir BUILDDIR --against REV [--workload json]
        [--rounds 12] [--scale 1] [--sample-bytes N] [--python PY]

REV is any git revision of this repository; its agent is built from `git archive REV` with its
own tests/e2e/build-agent.sh, this tree's agent is BUILDDIR's (or built the same way). Each
round runs the three configurations back to back in a rotated order, through `heapwatch run`
with a 1 s interval against a heapwatchd of BUILDDIR (agent_overhead.py's daemon and runner,
which check that every run is what it claims). Peak RSS is the workload's own VmHWM
(`peak_rss_bytes`), after one untimed run of each; the report gives per configuration the
median, the range and every run in MiB, the runs above the no-agent median by more than 1 MiB,
and how often this tree's agent could not serve a padded sampled block from its pool
(status()["heap_padded_blocks"]). Stdlib only.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_overhead as ao  # noqa: E402

CONFIGS = ("none", "against", "this")


def build_agent_at(rev, pyinfo, tmp):
    """The agent of revision rev, built for the target interpreter; returns its directory."""
    src = os.path.join(tmp, "src-" + rev.replace("/", "_"))
    os.makedirs(src)
    archive = subprocess.run(["git", "-C", ao.SRCDIR, "archive", "--format=tar", rev], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    if archive.returncode != 0:
        ao.die("git archive %s failed: %s" % (rev, archive.stderr.decode(errors="replace").strip()))
    subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
    out = os.path.join(tmp, "agent-" + rev.replace("/", "_"))
    r = subprocess.run(["sh", os.path.join(src, "tests", "e2e", "build-agent.sh"), pyinfo["executable"], out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        ao.die("building the agent of %s failed:\n%s" % (rev, r.stderr))
    return out


def mib(b):
    return b / 1048576.0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True, help="the build tree (heapwatchd, heapwatch, this agent)")
    ap.add_argument("--against", required=True, metavar="REV", help="git revision whose agent to compare with")
    ap.add_argument("--workload", default="json", help="a workload of bench/workloads.py (default json)")
    ap.add_argument("--rounds", type=int, default=12, help="runs of each configuration (default 12)")
    ap.add_argument("--scale", type=float, default=1.0, help="workload size (default 1)")
    ap.add_argument("--sample-bytes", type=int, help="HEAPWATCH_SAMPLE_BYTES for both agents (default: theirs)")
    ap.add_argument("--python", help="interpreter (default: the one the build tree's agent was built for)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ao.die("--rounds must be at least 1")
    if args.workload not in ao.ALL_WORKLOADS:
        ao.die("unknown workload %r" % args.workload)
    if args.sample_bytes is not None and args.sample_bytes < 0:
        ao.die("--sample-bytes must not be negative")

    with ao.Session("hw-rss-ab-") as session:
        tmp = session.tmp
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(args.builddir))
        this_dir, _ = ao.find_agent(args.builddir, pyinfo, tmp)
        against_dir = build_agent_at(args.against, pyinfo, tmp)
        workloads, extra_paths, notes = ao.available_workloads([args.workload], pyinfo, tmp)
        if not workloads:
            ao.die("%s cannot run here: %s" % (args.workload, "; ".join(notes)))
        daemon = session.start_daemon(args.builddir)
        ao_args = argparse.Namespace(builddir=args.builddir, scale=args.scale)
        runners = {}
        for name, agent_dir in (("none", this_dir), ("against", against_dir), ("this", this_dir)):
            r = ao.Runner(ao_args, pyinfo, agent_dir, daemon, extra_paths, tmp)
            if args.sample_bytes is not None:
                r.agent_env = dict(r.agent_env, HEAPWATCH_SAMPLE_BYTES=str(args.sample_bytes))
            runners[name] = r
        # one untimed run each first: the first run compiles the bytecode cache (the runner's
        # private PYTHONPYCACHEPREFIX) and reads a cold page cache, several MiB above the rest
        for c in CONFIGS:
            runners[c].run("baseline" if c == "none" else "agent-1s", args.workload)
        peaks = {c: [] for c in CONFIGS}
        misses = []  # this tree's agent: sampled blocks the pool could not serve, per run
        for i in range(args.rounds):
            for c in ao.rotated(CONFIGS, i):
                res = runners[c].run("baseline" if c == "none" else "agent-1s", args.workload)
                peaks[c].append(mib(res["peak_rss_bytes"]))
                if c == "this" and res.get("agent_padded_blocks"):
                    misses.append(res["agent_padded_blocks"]["host_malloc"])
            ao.log("peak_rss_ab: round %d/%d: %s" % (i + 1, args.rounds,
                                                       ", ".join("%s %.1f" % (c, peaks[c][-1]) for c in CONFIGS)))

    base = ao.median(peaks["none"])
    print("peak RSS of %s --scale %g, MiB (VmHWM), %d alternating runs each; interpreter %s; "
          "sample bytes %s" % (args.workload, args.scale, args.rounds, pyinfo["executable"],
                               args.sample_bytes if args.sample_bytes is not None else "default"))
    print("| configuration | median | range | runs > no agent + 1 MiB | every run |")
    print("|---|---|---|---|---|")
    labels = {"none": "no agent", "against": "agent of %s" % args.against, "this": "this tree's agent"}
    for c in CONFIGS:
        v = peaks[c]
        print("| %s | %.1f | %.1f-%.1f | %d | %s |" % (labels[c], ao.median(v), min(v), max(v),
                                                     sum(1 for x in v if x > base + 1),
                                                     " ".join("%.1f" % x for x in v)))
    if misses:
        print("this tree's agent: padded sampled blocks from the host's malloc (the pool empty), per run: %s"
              % " ".join(str(m) for m in misses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
