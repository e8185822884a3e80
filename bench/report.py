#!/usr/bin/python3
"""Turns the raw files of one bench/run-bench.sh guest run into
PREFIX.md, PREFIX.json and PREFIX.png.

usage: report.py OUTDIR PREFIX   (OUTDIR holds raw/ and host.env)
"""
import glob
import json
import os
import re
import sys

OUT, PREFIX = sys.argv[1], sys.argv[2]
RAW = os.path.join(OUT, "raw")

JOBS = [
    ("rr4k_qd1", "4k randread QD1"),
    ("rr4k_qd32", "4k randread QD32"),
    ("rw4k_qd32", "4k randwrite QD32"),
    ("sr1m_qd8", "1M seq read QD8"),
    ("sw1m_qd8", "1M seq write QD8"),
    ("rr4k_qd32_2j", "4k randread QD32 x2 jobs"),
]
JOB_NAMES = dict(JOBS)
REFS = ["brd", "null_blk", "loop", "nbd"]
DBLOCK = [f"dblock-{b}-{q}q" for b in ("null", "ram", "file") for q in (1, 2)]
EXTRA = ["dblock-ram-1q-coloc"]
# On a memory-backed null_blk with 100 us timer completions (see guest-bench.sh).
LAT = ["null_blk-lat", "loop-dio-lat", "dblock-file-dio-lat", "dblock-file-uring-lat", "dblock-file-thr-lat",
       "dblock-null-ceil"]
LAT_JOBS = ["rr4k_qd32", "rw4k_qd32", "sr1m_qd8", "sw1m_qd8"]
LAT_NEED = 0.9  # dblock-file-dio-lat / loop-dio-lat
# One nbdkit memory server: the kernel's nbd client (1 and 2 connections) and
# dblock's NBD backend (1 queue/1 connection, 2 queues/2 connections).
NBD = ["nbd-k1", "nbd-k2", "dblock-nbd-1q", "dblock-nbd-2q"]
NBD_PAIRS = [("dblock-nbd-1q", "nbd-k1"), ("dblock-nbd-2q", "nbd-k2")]
NBD_NEED, NBD_BEST_NEED, NBD_BEST_JOB = 1.0, 1.2, "rr4k_qd32"
# libdblock's same null and RAM servers over the kernel's ublk (--transport
# ublk), against themselves over dblock.ko: what the module buys.
UBLK_KO = [f"ublk-{b}-{q}q" for b in ("null", "ram") for q in (1, 2)]
# The same dblock-serve over dblock.ko in the ublk rounds (ko-B-Nq); without
# them, the dblock-B-Nq rows of their own section.
KO = ["ko-" + t[len("ublk-"):] for t in UBLK_KO]
UBLK_NEED = 1.0  # ko-B-Nq (or dblock-B-Nq) / ublk-B-Nq on each 4k job
# The kernel's own ublk selftest server (kublk, from Debian's linux-source) beside
# dblock-serve over ublk, same target kind, queues, depth 64 and max I/O 1 MiB:
# null vs null, and its loop target vs dblock-serve's file backend, both with
# O_DIRECT on one brd disk. They take turns job by job (medians of rounds).
UBLK = UBLK_KO + ["ublk-file-1q"]
KUBLK = ["kublk-null-1q", "kublk-null-2q", "kublk-loop-1q"]
KUBLK_PAIRS = [("ublk-null-1q", "kublk-null-1q"), ("ublk-null-2q", "kublk-null-2q"),
               ("ublk-file-1q", "kublk-loop-1q")]
KUBLK_NEED = 1.0  # ublk-X / kublk-Y on every job
TARGETS = REFS + DBLOCK + EXTRA + LAT + NBD + KO + UBLK + KUBLK
RATIO_REFS = ["brd", "null_blk", "nbd"]


def read_kv(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def read_colon(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if ":" in line:
                k, v = line.split(":", 1)
                v = v.strip().split()
                if v:
                    try:
                        d[k.strip()] = int(v[0])
                    except ValueError:
                        d[k.strip()] = v[0]
    return d


def threads(path):
    t = {}
    if os.path.exists(path):
        for line in open(path):
            f = line.split()
            if len(f) >= 8:
                t[f[0]] = dict(comm=f[1], vcs=int(f[2]), nvcs=int(f[3]), utime=int(f[4]),
                               stime=int(f[5]), cpu=int(f[6]), mig=int(f[7]))
    return t


def thread_delta(before, after, ios, seconds):
    """Per-thread activity between two snapshots (clock ticks: 100/s)."""
    b, a = threads(before), threads(after)
    out = []
    for tid, x in a.items():
        y = b.get(tid)
        if not y:
            continue
        ticks = x["utime"] + x["stime"] - y["utime"] - y["stime"]
        vcs = x["vcs"] - y["vcs"]
        if ticks == 0 and vcs == 0:
            continue
        out.append(dict(tid=int(tid), comm=x["comm"], last_cpu=x["cpu"],
                        cpu_pct=round(ticks / max(seconds, 1e-9), 1),
                        usr_ticks=x["utime"] - y["utime"], sys_ticks=x["stime"] - y["stime"],
                        vol_cs=vcs, invol_cs=x["nvcs"] - y["nvcs"], migrations=x["mig"] - y["mig"],
                        vol_cs_per_io=round(vcs / ios, 3) if ios else None))
    return out


def cpu_util(before, after):
    def parse(p):
        d = {}
        if os.path.exists(p):
            for line in open(p):
                f = line.split()
                v = list(map(int, f[1:]))
                d[f[0]] = (sum(v), v[3] + v[4], v[0] + v[1], v[2], v[5] + v[6])
        return d
    b, a = parse(before), parse(after)
    res = {}
    for cpu in sorted(a):
        if cpu not in b:
            continue
        tot = a[cpu][0] - b[cpu][0]
        if tot <= 0:
            continue
        res[cpu] = dict(busy=round(100 * (tot - (a[cpu][1] - b[cpu][1])) / tot, 1),
                        user=round(100 * (a[cpu][2] - b[cpu][2]) / tot, 1),
                        sys=round(100 * (a[cpu][3] - b[cpu][3]) / tot, 1),
                        irq=round(100 * (a[cpu][4] - b[cpu][4]) / tot, 1))
    return res


def fio_result(path):
    try:
        j = json.load(open(path))
    except (OSError, ValueError):
        return None
    job = j["jobs"][0]
    side = "read" if job["read"]["io_bytes"] > 0 else "write"
    s = job[side]
    pct = s.get("clat_ns", {}).get("percentile", {})
    runtime_s = s["runtime"] / 1000.0
    return dict(op=side, iops=round(s["iops"], 1), bw_mib=round(s["bw_bytes"] / 2**20, 1),
                lat_mean_us=round(s["lat_ns"]["mean"] / 1000, 1),
                clat_p99_us=round(pct.get("99.000000", 0) / 1000, 1),
                ios=s["total_ios"], runtime_s=runtime_s,
                fio_ctx=sum(x["ctx"] for x in j["jobs"]),
                fio_usr_pct=round(job["usr_cpu"], 1), fio_sys_pct=round(job["sys_cpu"], 1))


def main():
    host = read_kv(os.path.join(OUT, "host.env"))
    guest = read_kv(os.path.join(RAW, "guest.env"))
    notes = open(os.path.join(RAW, "notes.txt")).read().splitlines() \
        if os.path.exists(os.path.join(RAW, "notes.txt")) else []

    results = {}
    for target in TARGETS:
        for job, _ in JOBS:
            base = os.path.join(RAW, "fio", f"{target}@{job}")
            # Several rounds (the latency section): the median round stands for all.
            rounds = []
            for f in sorted(glob.glob(base + "@r*.json")):
                rr = fio_result(f)
                if rr:
                    rounds.append((rr["iops"], f[:-5], rr))
            if rounds:
                rounds.sort(key=lambda x: x[0])
                _, base, r = rounds[len(rounds) // 2]
                r["rounds_iops"] = [x[0] for x in rounds]
            else:
                r = fio_result(base + ".json")
            if not r:
                continue
            r["cpu"] = cpu_util(base + ".cpu-before", base + ".cpu-after")
            if os.path.exists(base + ".peer-after"):
                peer = thread_delta(base + ".peer-before", base + ".peer-after", r["ios"], r["runtime_s"])
                ticks = sum(t["usr_ticks"] + t["sys_ticks"] for t in peer)
                # The NBD server's CPU time per request, in microseconds (100 ticks/s).
                r["peer_cpu_us_per_io"] = round(ticks * 10000 / r["ios"], 1) if r["ios"] else None
                r["peer_cpu_pct"] = round(ticks / max(r["runtime_s"], 1e-9), 1)
            if os.path.exists(base + ".threads-after"):
                r["server_threads"] = thread_delta(base + ".threads-before", base + ".threads-after",
                                                   r["ios"], r["runtime_s"])
            results.setdefault(target, {})[job] = r

    # Ratios: each dblock figure (IOPS; for 1M jobs the same as bandwidth) over a reference's.
    ratios = {}
    for target in DBLOCK + EXTRA:
        for job, _ in JOBS:
            r = results.get(target, {}).get(job)
            if not r:
                continue
            for ref in RATIO_REFS:
                x = results.get(ref, {}).get(job)
                if x and x["iops"] > 0:
                    ratios.setdefault(target, {}).setdefault(job, {})[ref] = round(r["iops"] / x["iops"], 3)

    def ratio(t, j, ref):
        return ratios.get(t, {}).get(j, {}).get(ref)

    def iops(t, j):
        return results.get(t, {}).get(j, {}).get("iops")

    # Targets of issue #5 (6.12).
    checks = []

    def check(what, target, job, ref, need, value=None):
        v = value if value is not None else ratio(target, job, ref)
        checks.append(dict(target=what, device=target, job=job, vs=ref, need=need,
                           value=v, holds=None if v is None else v >= need))

    for q in ("1q", "2q"):
        check(f"dblock null 4k randread QD32 >= 0.9x null_blk ({q})", f"dblock-null-{q}", "rr4k_qd32", "null_blk", 0.9)
        check(f"dblock null 4k randread QD1 >= 0.10x null_blk ({q})", f"dblock-null-{q}", "rr4k_qd1", "null_blk", 0.10)
    for q in ("1q", "2q"):
        check(f"dblock RAM 4k randread QD32 >= 0.75x brd ({q})", f"dblock-ram-{q}", "rr4k_qd32", "brd", 0.75)
        check(f"dblock RAM 4k randwrite QD32 >= 0.75x brd ({q})", f"dblock-ram-{q}", "rw4k_qd32", "brd", 0.75)
        check(f"dblock RAM 1M seq read >= 0.6x brd ({q})", f"dblock-ram-{q}", "sr1m_qd8", "brd", 0.6)
        check(f"dblock RAM 1M seq write >= 0.6x brd ({q})", f"dblock-ram-{q}", "sw1m_qd8", "brd", 0.6)
        for job in ("rr4k_qd1", "rr4k_qd32", "rw4k_qd32", "rr4k_qd32_2j"):
            check(f"dblock RAM {JOB_NAMES[job]} >= 5x NBD ({q})", f"dblock-ram-{q}", job, "nbd", 5.0)
    for b in ("null", "ram", "file"):
        one, two = iops(f"dblock-{b}-1q", "rr4k_qd32_2j"), iops(f"dblock-{b}-2q", "rr4k_qd32_2j")
        v = round(two / one, 3) if one and two else None
        check(f"dblock {b}: 2 queues/2 jobs >= 1 queue/2 jobs", f"dblock-{b}-2q", "rr4k_qd32_2j",
              f"dblock-{b}-1q", 1.0, v)

    # Latency device: dblock file backend (O_DIRECT) vs loop (direct I/O), same device.
    lat_env = read_kv(os.path.join(RAW, "lat.env"))
    latency = {}
    if any(t in results for t in LAT):
        latency = dict(env=lat_env, need=LAT_NEED, jobs={})
        for job in LAT_JOBS:
            v = {t: results.get(t, {}).get(job) for t in LAT}
            if not any(v.values()):
                continue

            def rel(a, b):
                return round(v[a]["iops"] / v[b]["iops"], 3) if v[a] and v[b] and v[b]["iops"] > 0 else None
            e = dict(dblock_vs_loop=rel("dblock-file-dio-lat", "loop-dio-lat"),
                     dblock_vs_raw=rel("dblock-file-dio-lat", "null_blk-lat"),
                     loop_vs_raw=rel("loop-dio-lat", "null_blk-lat"),
                     uring_vs_loop=rel("dblock-file-uring-lat", "loop-dio-lat"),
                     threads_vs_loop=rel("dblock-file-thr-lat", "loop-dio-lat"),
                     ceiling_vs_loop=rel("dblock-null-ceil", "loop-dio-lat"))
            latency["jobs"][job] = e
            what = (f"dblock file O_DIRECT {JOB_NAMES[job]} >= {LAT_NEED}x loop direct I/O "
                    f"({lat_us(lat_env)} us null_blk)")
            check(what, "dblock-file-dio-lat", job, "loop-dio-lat", LAT_NEED, e["dblock_vs_loop"])

    # NBD: dblock's NBD backend vs the kernel's client, same server.
    nbd = {}
    if any(t in results for t in NBD):
        nbd = dict(need=NBD_NEED, best_need=NBD_BEST_NEED, best_job=NBD_BEST_JOB, jobs={})
        for job, _ in JOBS:
            e = {}
            for mine, ref in NBD_PAIRS:
                a, b = iops(mine, job), iops(ref, job)
                e[mine] = round(a / b, 3) if a and b else None
                check(f"dblock NBD {JOB_NAMES[job]} >= {NBD_NEED}x kernel nbd, same connections "
                      f"({mine} / {ref})", mine, job, ref, NBD_NEED, e[mine])
            best_mine = max((iops(t, job) or 0) for t in ("dblock-nbd-1q", "dblock-nbd-2q"))
            best_ref = max((iops(t, job) or 0) for t in ("nbd-k1", "nbd-k2"))
            e["best"] = round(best_mine / best_ref, 3) if best_mine and best_ref else None
            nbd["jobs"][job] = e
        check(f"dblock NBD {JOB_NAMES[NBD_BEST_JOB]} >= {NBD_BEST_NEED}x kernel nbd, each at its best",
              "dblock-nbd-*", NBD_BEST_JOB, "nbd-k*", NBD_BEST_NEED, nbd["jobs"][NBD_BEST_JOB]["best"])

    # Transports: the same servers over dblock.ko and over ublk.
    for t in UBLK_KO:
        mine = "ko-" + t[len("ublk-"):]
        if mine not in results:
            mine = "dblock-" + t[len("ublk-"):]
        for job, _ in JOBS:
            if not job.startswith("r"):
                continue
            a, b = iops(mine, job), iops(t, job)
            check(f"libdblock over dblock.ko {JOB_NAMES[job]} >= {UBLK_NEED}x over ublk ({mine} / {t})",
                  mine, job, t, UBLK_NEED, round(a / b, 3) if a and b else None)

    # Over ublk: libdblock (dblock-serve --transport ublk) vs the kernel's kublk.
    kublk = {}
    if any(t in results for t in KUBLK):
        kublk = dict(need=KUBLK_NEED, pairs=KUBLK_PAIRS, jobs={}, rounds={})

        def round_iops(t, job):
            out = {}
            for f in glob.glob(os.path.join(RAW, "fio", f"{t}@{job}@r*.json")):
                r = fio_result(f)
                if r:
                    out[int(f[:-5].rsplit("@r", 1)[1])] = r["iops"]
            return out
        for job, _ in JOBS:
            e = {}
            for mine, ref in KUBLK_PAIRS:
                a, b = iops(mine, job), iops(ref, job)
                e[mine] = round(a / b, 3) if a and b else None
                # Per round, in round order: the host's load can change between rounds.
                ra, rb = round_iops(mine, job), round_iops(ref, job)
                rs = [round(ra[n] / rb[n], 3) for n in sorted(ra) if rb.get(n)]
                if len(rs) > 1:
                    kublk["rounds"].setdefault(job, {})[mine] = rs
                check(f"libdblock over ublk {JOB_NAMES[job]} >= {KUBLK_NEED}x kublk ({mine} / {ref})",
                      mine, job, ref, KUBLK_NEED, e[mine])
            kublk["jobs"][job] = e

    # Memory.
    mem = {}
    m = os.path.join(RAW, "mem")
    if os.path.exists(os.path.join(m, "server-256m")):
        s0, s1 = read_colon(os.path.join(m, "server-empty")), read_colon(os.path.join(m, "server-256m"))
        before, after = read_colon(os.path.join(m, "idle-before")), read_colon(os.path.join(m, "idle-after"))
        destroyed = read_colon(os.path.join(m, "idle-destroyed"))
        data_mib = 256
        rss = s1.get("VmRSS", 0) / 1024
        mem = dict(
            config="RAM backend, 1 GiB device, 1 queue, depth 64, max I/O 256 KiB "
                   "(16 MiB buffer area, in the server's memory where the module offers it)",
            data_mib=data_mib,
            server_rss_mib_empty=round(s0.get("VmRSS", 0) / 1024, 1),
            server_rss_mib=round(rss, 1),
            server_rss_anon_mib=round(s1.get("RssAnon", 0) / 1024, 1),
            server_rss_file_mib=round(s1.get("RssFile", 0) / 1024, 1),
            limit_mib=round(1.1 * data_mib + 32, 1),
            holds=rss <= 1.1 * data_mib + 32,
            idle_device_kernel_kib={k: after.get(k, 0) - before.get(k, 0)
                                    for k in ("Slab", "SUnreclaim", "VmallocUsed", "Percpu", "KernelStack", "PageTables")},
            after_destroy_vs_before_kib={k: destroyed.get(k, 0) - before.get(k, 0)
                                         for k in ("Slab", "SUnreclaim", "VmallocUsed", "Percpu")},
        )
    scale = []
    start = read_colon(os.path.join(m, "scale-start"))
    for path in sorted(glob.glob(os.path.join(m, "scale-r*-end"))):
        rnd = re.search(r"scale-r(\d+)-end", path).group(1)
        end, peak = read_colon(path), read_colon(os.path.join(m, f"scale-r{rnd}-peak"))
        scale.append(dict(round=int(rnd), up=end.get("up"), read_ok=end.get("read_ok"),
                          exit0=end.get("exit0"), exit_bad=end.get("exit_bad"), seconds=end.get("seconds"),
                          seconds_to_all_up=end.get("seconds_up"),
                          peak_delta_kib={k: peak.get(k, 0) - start.get(k, 0)
                                          for k in ("Slab", "SUnreclaim", "VmallocUsed", "KernelStack", "PageTables")},
                          end_delta_kib={k: end.get(k, 0) - start.get(k, 0)
                                         for k in ("Slab", "SUnreclaim", "VmallocUsed", "Percpu", "KernelStack")},
                          refcnt_start=start.get("refcnt"), refcnt_end=end.get("refcnt"),
                          devices_end=end.get("devices")))

    # Profile.
    profile = {}
    for qd in ("32", "1"):
        p = os.path.join(RAW, "profile", f"qd{qd}")
        if not os.path.exists(p + ".perfstat"):
            continue
        ev = {}
        for line in open(p + ".perfstat"):
            f = line.strip().split(",")
            if len(f) >= 3 and f[0] and not line.startswith("#"):
                try:
                    ev[f[2]] = float(f[0])
                except ValueError:
                    pass
        try:
            r0 = open(p + ".diskstat-before").read().split()
            r1 = open(p + ".diskstat-after").read().split()
            ios = int(r1[0]) - int(r0[0]) + int(r1[1]) - int(r0[1])
        except (OSError, IndexError, ValueError):
            ios = 0
        per_io = {k: round(v / ios, 3) for k, v in ev.items() if ios and k != "cpu-clock"}
        fio = fio_result(p + ".fio.json")
        td = thread_delta(p + ".threads-before", p + ".threads-after", ios, 3.0)

        def top(path, n):
            rows = []
            if os.path.exists(path):
                for line in open(path):
                    mm = re.match(r"\s+([\d.]+)%\s+(.*\S)", line)
                    if mm:
                        rows.append([float(mm.group(1)), re.sub(r"\s+", " ", mm.group(2))])
            return rows[:n]
        profile[f"qd{qd}"] = dict(ios_in_window=ios, window_s=3, per_io=per_io, events=ev, fio=fio,
                                 server_threads=td,
                                 cpu_ms_per_io_all_cpus=round(ev.get("cpu-clock", 0) / ios, 4) if ios else None,
                                 top_symbols=top(p + ".report-sym", 25),
                                 top_comm_dso=top(p + ".report-comm", 15),
                                 top_comm_sym=top(p + ".report-commsym", 30))

    # Interleaved rounds: median of per-round ratios (robust to host-load drift).
    inter = {}
    files = glob.glob(os.path.join(RAW, "inter", "r*@*@*.json"))
    per = {}
    for f in files:
        rnd, target, job = os.path.basename(f)[:-5].split("@")
        r = fio_result(f)
        if r:
            per.setdefault(job, {}).setdefault(rnd, {})[target] = r["iops"]
    pairs = [("dblock-ram-1q", "brd"), ("dblock-null-1q", "null_blk"), ("dblock-ram-1q", "null_blk")]
    for job, rounds in per.items():
        e = inter.setdefault(job, {"iops": {}, "ratios": {}})
        for rnd in sorted(rounds):
            for t, v in rounds[rnd].items():
                e["iops"].setdefault(t, []).append(v)
        for a, b in pairs:
            rs = sorted(x[a] / x[b] for x in rounds.values() if x.get(a) and x.get(b))
            if rs:
                e["ratios"][f"{a}/{b}"] = dict(median=round(rs[len(rs) // 2], 3), all=[round(x, 3) for x in rs])
    for what, job, key, need in (
            ("dblock null 4k randread QD32 >= 0.9x null_blk (interleaved median, 1q)", "rr4k_qd32", "dblock-null-1q/null_blk", 0.9),
            ("dblock null 4k randread QD1 >= 0.10x null_blk (interleaved median, 1q)", "rr4k_qd1", "dblock-null-1q/null_blk", 0.10),
            ("dblock RAM 4k randread QD32 >= 0.75x brd (interleaved median, 1q)", "rr4k_qd32", "dblock-ram-1q/brd", 0.75),
            ("dblock RAM 4k randwrite QD32 >= 0.75x brd (interleaved median, 1q)", "rw4k_qd32", "dblock-ram-1q/brd", 0.75),
            ("dblock RAM 1M seq read >= 0.6x brd (interleaved median, 1q)", "sr1m_qd8", "dblock-ram-1q/brd", 0.6)):
        v = inter.get(job, {}).get("ratios", {}).get(key, {}).get("median")
        if v is not None:
            check(what, key.split("/")[0], job, key.split("/")[1], need, v)

    data = dict(host=host, guest=guest, notes=notes, results=results, ratios=ratios, checks=checks,
                interleaved=inter, latency=latency, nbd=nbd, kublk=kublk,
                memory=mem, scale=scale, profile=profile,
                caveat="QEMU TCG (software emulation) on a shared 2-core host: figures are not absolute "
                       "speeds; only ratios within this one boot mean something (run-to-run spread +-15%, "
                       "more on a busy host).")
    json.dump(data, open(PREFIX + ".json", "w"), indent=1)
    write_md(data)
    write_png(data)


def fmt_iops(x):
    return f"{x/1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def write_md(d):
    L = []
    g, h = d["guest"], d["host"]
    L.append("# dblock side-by-side benchmark (bench/run-bench.sh)\n")
    L.append(f"**{d['caveat']}**\n")
    L.append(f"- guest kernel {g.get('kernel')}, {g.get('vcpus')} vCPUs, {g.get('mem_mib')} MiB, clocksource "
             f"{g.get('clocksource')}; {g.get('fio')}; each job: {g.get('runtime')} (seconds)")
    L.append(f"- source {h.get('git')}, {h.get('date')}; binaries: {h.get('binaries', 'built from this tree')}")
    L.append(f"- host load before: `{h.get('host_uptime_before', '').strip()}`")
    L.append(f"- host load after: `{h.get('host_uptime_after', '').strip()}`")
    L.append("- fio: libaio, direct=1, time_based, norandommap, 256 MiB span; devices prefilled "
             "(null ones excepted)")
    L.append("- CPU placement: 1-job runs pin fio to CPU 1 and every server thread (dblock server, nbdkit) "
             "to CPU 0; blk-mq maps CPU 1 to the last hardware queue. 2-job runs split fio over CPUs 0/1 "
             "and leave servers to the scheduler (affinity 0-1). `dblock-ram-1q-coloc` pins the server to "
             "fio's CPU 1 to show the cost of sharing a CPU.")
    L.append("- references: brd (rd_size 256 MiB), null_blk (queue_mode=2 irqmode=0 i.e. completion "
             "inline, 2 submit queues), loop over a tmpfs file (buffered), nbd + `nbdkit memory` over a "
             "unix socket (1 connection). dblock RAM = dblock_sample_ramdisk, null/file = dblock-serve; "
             "depth 64, max I/O 1 MiB.")
    if d.get("latency"):
        e = d["latency"]["env"]
        L.append(f"- latency device (`*-lat`): null_blk made through configfs, irqmode={e.get('nullb_irqmode', '?')} "
                 f"(timer) completion_nsec={e.get('nullb_completion_nsec', '?')}, "
                 f"memory_backed={e.get('nullb_memory_backed', '?')}, {e.get('nullb_size', '?')} MB, "
                 f"bs {e.get('nullb_blocksize', '?')}, {e.get('nullb_submit_queues', '?')} submit queues, "
                 f"depth {e.get('nullb_hw_queue_depth', '?')}; `loop-dio-lat` = `losetup --direct-io=on` on it "
                 f"(loop/dio={e.get('loop_dio', '?')}); `dblock-file-dio-lat` = `dblock-serve "
                 f"{e.get('dblock_args', '?')}`. The three take turns job by job.")
    for n in d["notes"]:
        L.append(f"- note: {n}")
    L.append("")
    L.append("## Results\n")
    L.append("IOPS / bandwidth (MiB/s) / mean latency / p99 completion latency (us). "
             "Ratios: dblock IOPS over brd, null_blk and nbd in the same job of this run.\n")
    L.append("| device | job | IOPS | MiB/s | mean us | p99 us | vs brd | vs null_blk | vs nbd |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in TARGETS:
        for j, jn in JOBS:
            r = d["results"].get(t, {}).get(j)
            if not r:
                continue
            rr = d["ratios"].get(t, {}).get(j, {})
            cells = [f"{rr[x]:.2f}x" if x in rr else "" for x in RATIO_REFS]
            L.append(f"| {t} | {jn} | {fmt_iops(r['iops'])} | {r['bw_mib']:.0f} | {r['lat_mean_us']:.0f} | "
                     f"{r['clat_p99_us']:.0f} | " + " | ".join(cells) + " |")
    L.append("")
    if d.get("latency"):
        write_latency_md(L, d)
    if d.get("nbd"):
        write_nbd_md(L, d)
    if d.get("kublk"):
        write_kublk_md(L, d)
    L.append("## Targets (ratios)\n")
    L.append("| target | measured | verdict |")
    L.append("| --- | ---: | --- |")
    missing = 0
    for c in d["checks"]:
        if c["value"] is None:
            missing += 1
            continue
        v = "holds" if c["holds"] else "**MISS**"
        L.append(f"| {c['target']} | {c['value']:.2f}x | {v} |")
    if missing:
        L.append(f"\n{missing} more target(s) not measured in this run.")
    L.append("")
    if d.get("interleaved"):
        L.append("## Interleaved rounds (drift-robust ratios)\n")
        L.append("brd, null_blk, dblock RAM 1q and dblock null 1q present at once, taking turns job by job "
                 "(shorter runs); median and all per-round ratios of IOPS.\n")
        L.append("| job | dblock-ram/brd | dblock-null/null_blk | dblock-ram/null_blk | IOPS per round (brd; null_blk; ram; null) |")
        L.append("| --- | --- | --- | --- | --- |")
        for j, jn in JOBS:
            e = d["interleaved"].get(j)
            if not e:
                continue
            cells = []
            for k in ("dblock-ram-1q/brd", "dblock-null-1q/null_blk", "dblock-ram-1q/null_blk"):
                x = e["ratios"].get(k)
                cells.append(f"**{x['median']:.3f}x** ({', '.join(f'{v:.3f}' for v in x['all'])})" if x else "")
            ii = "; ".join("/".join(fmt_iops(v) for v in e["iops"].get(t, []))
                           for t in ("brd", "null_blk", "dblock-ram-1q", "dblock-null-1q"))
            L.append(f"| {jn} | " + " | ".join(cells) + f" | {ii} |")
        L.append("")
    L.append("## Where server threads ran (dblock and nbd)\n")
    L.append("Per job: each server thread that ran (last CPU, CPU %, voluntary context switches per I/O, "
             "migrations). CPU busy % of vCPU 0/1 over the job.\n")
    L.append("| device | job | vCPU0/vCPU1 busy % | server threads: comm@lastcpu cpu% vcs/IO mig |")
    L.append("| --- | --- | --- | --- |")
    for t in TARGETS:
        for j, jn in JOBS:
            r = d["results"].get(t, {}).get(j)
            if not r:
                continue
            cpu = r.get("cpu", {})
            busy = "/".join(f"{cpu[c]['busy']:.0f}" for c in sorted(cpu))
            th = r.get("server_threads")
            ths = "; ".join(f"{x['comm']}@{x['last_cpu']} {x['cpu_pct']:.0f}% {x['vol_cs_per_io']} {x['migrations']}"
                            for x in sorted(th, key=lambda x: -x["cpu_pct"])[:4]) if th else "(no server)"
            L.append(f"| {t} | {jn} | {busy} | {ths} |")
    L.append("")
    mem = d["memory"]
    if mem:
        L.append("## Memory\n")
        L.append(f"- {mem['config']}; {mem['data_mib']} MiB written")
        L.append(f"- server RSS: {mem['server_rss_mib_empty']} MiB empty, {mem['server_rss_mib']} MiB with data "
                 f"(anon {mem['server_rss_anon_mib']}, file/mapped buffer {mem['server_rss_file_mib']}); "
                 f"target <= 1.1 x data + 32 MiB = {mem['limit_mib']} MiB: "
                 f"{'holds' if mem['holds'] else '**MISS**'}")
        k = mem["idle_device_kernel_kib"]
        L.append("- kernel memory of one idle device (meminfo after - before, KiB): " +
                 ", ".join(f"{a} {b:+d}" for a, b in k.items()))
        # The device's own: slab, vmalloc and per-CPU (kernel stacks and page
        # tables above belong to the server process).
        own = k["Slab"] + k["VmallocUsed"] + k["Percpu"]
        L.append(f"- the device's own (Slab + VmallocUsed + Percpu): {own:+d} KiB; target a few hundred KiB "
                 f"(<= 512): {'holds' if own <= 512 else '**MISS**'}")
        k = mem["after_destroy_vs_before_kib"]
        L.append("- after destroy vs before create (KiB): " + ", ".join(f"{a} {b:+d}" for a, b in k.items()))
        L.append("")
    if d["scale"]:
        L.append("## Scale: 256 devices created, served, destroyed\n")
        L.append("Each device: 16 MiB RAM, 1 queue, depth 4, max I/O 64 KiB, its own server process; one "
                 "direct 4k read each, then `dblockctl destroy`. Deltas vs. before the first round (KiB).\n")
        L.append("| round | up | read ok | exit 0 | s | peak Slab / Vmalloc | end Slab / SUnreclaim / Vmalloc | module refcnt start/end | devices left |")
        L.append("| --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |")
        for s in d["scale"]:
            p, e = s["peak_delta_kib"], s["end_delta_kib"]
            L.append(f"| {s['round']} | {s['up']} | {s['read_ok']} | {s['exit0']} | {s['seconds']} | "
                     f"{p['Slab']:+d} / {p['VmallocUsed']:+d} | {e['Slab']:+d} / {e['SUnreclaim']:+d} / "
                     f"{e['VmallocUsed']:+d} | {s['refcnt_start']}/{s['refcnt_end']} | {s['devices_end']} |")
        last = d["scale"][-1]
        ok = all(str(x["up"]) == "256" and str(x["read_ok"]) == "256" and str(x["exit0"]) == "256"
                 for x in d["scale"]) and str(last["devices_end"]) == "0" and \
            last["refcnt_start"] == last["refcnt_end"] and abs(last["end_delta_kib"]["VmallocUsed"]) <= 256
        L.append(f"\nTarget: every round 256 up, read and exited 0; no device left; module use count "
                 f"back; vmalloc back within 256 KiB (slab moves with caches): {'holds' if ok else '**MISS**'}")
        L.append("")
    if d["profile"]:
        L.append("## Profile: dblock RAM, 1 queue, 4k randread (server on CPU 0, fio on CPU 1)\n")
        for qd, p in d["profile"].items():
            L.append(f"### {qd}: {p['ios_in_window']} I/Os in the {p['window_s']} s perf-stat window\n")
            pi = p["per_io"]
            L.append("Per I/O (system-wide counts / I/Os): " + ", ".join(f"{k} {v}" for k, v in pi.items()))
            if p["cpu_ms_per_io_all_cpus"] is not None:
                L.append(f"\nCPU time per I/O (both vCPUs, incl. idle): {p['cpu_ms_per_io_all_cpus']*1000:.1f} us")
            for t in p["server_threads"]:
                L.append(f"- server thread {t['comm']} (cpu {t['last_cpu']}): {t['cpu_pct']}% CPU "
                         f"({t['usr_ticks']} usr / {t['sys_ticks']} sys ticks), {t['vol_cs_per_io']} voluntary "
                         f"switches per I/O, {t['invol_cs']} involuntary")
            L.append("\nTop symbols (perf record -a, cpu-clock):\n")
            L.append("| % | command / symbol |")
            L.append("| ---: | --- |")
            for pct, sym in p["top_comm_sym"][:25]:
                L.append(f"| {pct:.1f} | {sym} |")
            L.append("")
    open(PREFIX + ".md", "w").write("\n".join(L) + "\n")


def lat_us(env):
    try:
        return f"{int(env.get('nullb_completion_nsec')) / 1000:g}"
    except (TypeError, ValueError):
        return "?"


def write_latency_md(L, d):
    lat, res = d["latency"], d["results"]
    e = lat["env"]
    L.append("## Latency device: dblock file backend (O_DIRECT) vs loop (direct I/O)\n")
    L.append(f"Both on the same null_blk device with {lat_us(e)} us "
             "timer completions (memory-backed), so throughput depends on how many requests each keeps in "
             "flight (under TCG a timer completion also costs much CPU: null_blk-lat itself stays far below "
             "depth / latency). Per job: IOPS (4k) or MiB/s (1M), mean latency in us; ratios of IOPS. "
             f"**Target: dblock-file-dio-lat >= {lat['need']}x loop-dio-lat** in each of these jobs.\n")
    if e.get("dblock_data_check") and e["dblock_data_check"] != "ok":
        L.append(f"**Data check (1 MiB written through dblock, read back from null_blk): "
                 f"{e['dblock_data_check']}.**\n")
    n = rounds_of(res, LAT)
    if n > 1:
        L.append(f"Each figure is the median of {n} rounds (the targets take turns, job by job, round "
                 "by round); the ratios are of medians.\n")
    L.append("`dblock-file-dio-lat` is `dblock-serve --direct-io` (`--aio auto`): dblock.ko does the file's reads "
             "and writes on the requests' pages (DBLOCK_IOC_SET_FILE, answers DBLOCK_CPL_FILE), as loop does; "
             "`dblock-file-uring-lat` the same file on io_uring in the server (`--aio io_uring`, a copy "
             "through the server's buffer), `dblock-file-thr-lat` on worker threads (`--aio threads`); "
             "`dblock-null-ceil` is dblock's null backend in the same "
             "shape, answering at once without any I/O: the most any dblock backend can reach on this machine. "
             "Where the ceiling is below the target, no backend can meet it here.\n")
    L.append("| job | null_blk-lat | loop-dio-lat | dblock-file-dio-lat | **dblock / loop** | target | verdict "
             "| dblock-file-uring-lat | io_uring / loop "
             "| dblock-file-thr-lat | threads / loop | dblock-null-ceil | **ceiling / loop** "
             "| dblock / null_blk-lat | loop / null_blk-lat |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def cell(t, j):
        r = res.get(t, {}).get(j)
        if not r:
            return ""
        v = f"{r['bw_mib']:.0f} MiB/s" if j.startswith("s") else fmt_iops(r["iops"])
        return f"{v} ({r['lat_mean_us']:.0f} us)"

    def x(v):
        return "" if v is None else f"{v:.2f}x"
    for j in LAT_JOBS:
        r = lat["jobs"].get(j)
        if not r:
            continue
        v = r["dblock_vs_loop"]
        verdict = "n/a" if v is None else ("holds" if v >= lat["need"] else "**MISS**")
        L.append(f"| {JOB_NAMES[j]} | {cell('null_blk-lat', j)} | {cell('loop-dio-lat', j)} | "
                 f"{cell('dblock-file-dio-lat', j)} | **{x(v)}** | >= {lat['need']}x | {verdict} | "
                 f"{cell('dblock-file-uring-lat', j)} | {x(r.get('uring_vs_loop'))} | "
                 f"{cell('dblock-file-thr-lat', j)} | {x(r.get('threads_vs_loop'))} | "
                 f"{cell('dblock-null-ceil', j)} | **{x(r.get('ceiling_vs_loop'))}** | "
                 f"{x(r['dblock_vs_raw'])} | {x(r['loop_vs_raw'])} |")
    L.append("")


def nbd_table(d):
    """The NBD comparison as markdown lines (also for the README)."""
    nbd, res = d["nbd"], d["results"]
    L = ["| job | nbd-k1 | dblock-nbd-1q | **1q / k1** | nbd-k2 | dblock-nbd-2q | **2q / k2** "
         "| best / best | nbdkit CPU us/req (k1, 1q, k2, 2q) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]

    def cell(t, j):
        r = res.get(t, {}).get(j)
        if not r:
            return ""
        return f"{r['bw_mib']:.0f} MiB/s" if j.startswith("s") else fmt_iops(r["iops"])

    def x(v):
        return "" if v is None else f"{v:.2f}x"

    def peer(j):
        return ", ".join(str(res.get(t, {}).get(j, {}).get("peer_cpu_us_per_io", "-")) for t in NBD)
    for j, jn in JOBS:
        e = nbd["jobs"].get(j)
        if not e:
            continue
        L.append(f"| {jn} | {cell('nbd-k1', j)} | {cell('dblock-nbd-1q', j)} | **{x(e['dblock-nbd-1q'])}** | "
                 f"{cell('nbd-k2', j)} | {cell('dblock-nbd-2q', j)} | **{x(e['dblock-nbd-2q'])}** | "
                 f"{x(e['best'])} | {peer(j)} |")
    return L


def rounds_of(res, targets):
    """How many rounds the targets took turns in (their figures are medians of them)."""
    return max((len(r.get("rounds_iops", [])) for t in targets for r in res.get(t, {}).values()),
               default=0)


def write_nbd_md(L, d):
    nbd, res = d["nbd"], d["results"]
    L.append("## NBD: dblock's NBD backend vs the kernel's nbd client\n")
    L.append("One `nbdkit memory` server over a unix socket (pinned to CPU 0), four clients of it in one "
             "boot, taking turns job by job: the kernel's `nbd` client with 1 and 2 connections "
             "(`nbd-client -C N`), and `dblock-serve --backend nbd+unix://...` with 1 queue/1 connection "
             "and 2 queues/2 connections. IOPS (4k) or MiB/s (1M); the last column is nbdkit's CPU time "
             "per request, which shows when the server itself is the limit. "
             f"**Targets: dblock >= {nbd['need']}x the kernel client at equal connections on every job, "
             f">= {nbd['best_need']}x at {JOB_NAMES[nbd['best_job']]} with each side's best setting.**\n")
    n = rounds_of(res, NBD)
    if n > 1:
        L.append(f"Each figure is the median of {n} rounds; the ratios are of medians.\n")
    L.extend(nbd_table(d))
    L.append("")


def write_kublk_md(L, d):
    kb, res = d["kublk"], d["results"]
    L.append("## Over ublk: libdblock (dblock-serve) vs the kernel's kublk\n")
    L.append("The kernel's ublk selftest server (`kublk`, tools/testing/selftests/ublk/ of Debian's "
             "linux-source, static with sid's liburing; see the notes for its version) beside "
             "`dblock-serve --transport ublk`, all up at once in one boot, taking turns job by job; "
             "depth 64, max I/O 1 MiB, no I/O scheduler, server threads pinned alike. null: "
             "`kublk add -t null` vs `--backend null`; loop: `kublk add -t loop /dev/ram0` (O_DIRECT) vs "
             "`--backend file:/dev/ram0 --direct-io`, one 256 MiB brd disk. IOPS (4k) or MiB/s (1M). "
             f"**Target: libdblock >= {kb['need']}x kublk on every job, same target kind.**\n")
    n = rounds_of(res, KUBLK)
    if n > 1:
        L.append(f"Each figure is the median of {n} rounds; the ratios are of medians, the per-round "
                 "ratios (round order) in brackets.\n")
    head, rule = "| job |", "| --- |"
    for mine, ref in kb["pairs"]:
        head += f" {mine} | {ref} | **ratio** |"
        rule += " ---: | ---: | ---: |"
    L.extend([head, rule])

    def cell(t, j):
        r = res.get(t, {}).get(j)
        if not r:
            return ""
        return f"{r['bw_mib']:.0f} MiB/s" if j.startswith("s") else fmt_iops(r["iops"])
    for j, jn in JOBS:
        e = kb["jobs"].get(j)
        if not e or not any(res.get(t, {}).get(j) for p in kb["pairs"] for t in p):
            continue
        row = f"| {jn} |"
        for mine, ref in kb["pairs"]:
            v = e.get(mine)
            rs = kb.get("rounds", {}).get(j, {}).get(mine)
            row += (f" {cell(mine, j)} | {cell(ref, j)} | **{'' if v is None else f'{v:.2f}x'}**"
                    + (f" ({', '.join(f'{x:.2f}' for x in rs)})" if rs else "") + " |")
        L.append(row)
    L.append("")


def write_png(d):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"brd": "#444444", "null_blk": "#888888", "loop": "#bbbbbb", "nbd": "#d62728",
              "dblock-null-1q": "#aec7e8", "dblock-null-2q": "#1f77b4",
              "dblock-ram-1q": "#98df8a", "dblock-ram-2q": "#2ca02c",
              "dblock-file-1q": "#ffbb78", "dblock-file-2q": "#ff7f0e",
              "dblock-ram-1q-coloc": "#9467bd",
              "null_blk-lat": "#7f7f7f", "loop-dio-lat": "#c7c7c7", "dblock-file-dio-lat": "#8c564b",
              "dblock-file-uring-lat": "#9467bd",
              "dblock-file-thr-lat": "#c49c94", "dblock-null-ceil": "#e377c2"}
    res, title_extra = d["results"], ""
    if "brd" not in res and d.get("interleaved"):
        # No full matrix in this run: chart the interleaved rounds' median IOPS.
        res, title_extra = {}, " [interleaved rounds, median]"
        for j, e in d["interleaved"].items():
            for t, v in e["iops"].items():
                m = sorted(v)[len(v) // 2]
                res.setdefault(t, {})[j] = dict(iops=m, bw_mib=m * (1 if j.startswith("s") else 4 / 1024))
        for t in EXTRA + LAT:
            for j, r in d["results"].get(t, {}).items():
                res.setdefault(t, {})[j] = r
        d = dict(d, results=res, ratios={t: {j: {"brd": res[t][j]["iops"] / res["brd"][j]["iops"]}
                                             for j in res[t] if j in res.get("brd", {})}
                                         for t in res if t.startswith("dblock")})
    present = [t for t in TARGETS if t in res]
    jobs = [(j, jn) for j, jn in JOBS if any(j in res[t] for t in present)]
    if not jobs:
        return
    fig, axes = plt.subplots(2, (len(jobs) + 1) // 2, figsize=(6 * ((len(jobs) + 1) // 2), 10.5))
    for ax, (j, jn) in zip(axes.flat, jobs):
        ts = [t for t in present if j in d["results"][t]]
        seq = j.startswith("s")
        vals = [d["results"][t][j]["bw_mib"] if seq else d["results"][t][j]["iops"] / 1000 for t in ts]
        bars = ax.barh(range(len(ts)), vals, color=[colors.get(t, "#333") for t in ts])
        ax.set_yticks(range(len(ts)))
        ax.set_yticklabels(ts, fontsize=10)
        ax.invert_yaxis()
        ax.set_title(jn, fontsize=13, fontweight="bold")
        ax.set_xlabel(("MiB/s" if seq else "k IOPS") + " (log scale)", fontsize=10)
        ax.set_xscale("log")
        ax.grid(axis="x", alpha=0.3)
        top = max(vals) if vals else 1
        low = min([v for v in vals if v > 0] or [top / 10])
        ax.set_xlim(low / 3, top * 15)
        for b, t, v in zip(bars, ts, vals):
            label = f"{v:.0f}" if seq else (f"{v:.1f}k" if v >= 1 else f"{v*1000:.0f}")
            rr = d["ratios"].get(t, {}).get(j, {})
            if "brd" in rr:
                label += f"  = {rr['brd']:.2f}x brd" if rr["brd"] >= 0.1 else f"  = {rr['brd']:.3f}x brd"
            lr = d.get("latency", {}).get("jobs", {}).get(j, {}).get("dblock_vs_loop")
            if t == "dblock-file-dio-lat" and lr is not None:
                label += f"  = {lr:.2f}x loop-dio-lat"
            ax.text(max(b.get_width(), low / 3) * 1.1, b.get_y() + b.get_height() / 2, label,
                    va="center", fontsize=9)
    g, h = d["guest"], d["host"]
    load = re.search(r"load average: (.*)", h.get("host_uptime_before", ""))
    fig.suptitle(f"dblock vs kernel block devices{title_extra}\nfio libaio direct, guest {g.get('kernel')} under QEMU TCG, "
                 f"{g.get('vcpus')} vCPUs (host load {load.group(1) if load else '?'})\n"
                 "Emulated: not absolute speeds, compare ratios only. Higher is better.",
                 fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(PREFIX + ".png", dpi=90)


if __name__ == "__main__":
    main()
