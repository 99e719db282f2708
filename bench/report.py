#!/usr/bin/env python3
"""Renders results.json (written by run.sh) as RESULTS.md.

Everything from the line `<!-- analysis -->` on in an existing RESULTS.md is kept, so the
hand-written explanation of the figures survives a re-run (re-read it against the new figures).
"""

import json
import os
import sys

MARK = "<!-- analysis -->"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    r = json.load(open(src))
    m, p = r["machine"], r["params"]
    check, nginx, qid = r["wrk_check"], r["wrk_nginx"], r.get("wrk_check_queryid")
    dl, rss = r["download"], r["rss"]
    mib = p["big_mib"]
    size_label = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"

    def yes(ok):
        return "**yes**" if ok else "**no**"

    check_ratio = check["rps"] / nginx["rps"]
    dl_ratio = dl["vypusk"]["mib_s"] / dl["nginx"]["mib_s"]
    peak_kib = max(rss["vmhwm_kib"], rss["peak_polled_kib"])
    peak_mb = peak_kib * 1024 / 1e6
    rows = [
        ("`getAvailableReleases` throughput, req/s (nginx: the same answer as a static file)",
         f"{check['rps']:,.0f}", f"{nginx['rps']:,.0f}", f"{check_ratio:.2f}", "≥ 0.5× nginx",
         yes(check_ratio >= 0.5)),
        (f"{size_label} download, MiB/s (median of {len(dl['vypusk']['seconds'])})",
         f"{dl['vypusk']['mib_s']:,.0f}", f"{dl['nginx']['mib_s']:,.0f}", f"{dl_ratio:.2f}",
         "≥ 0.9× nginx", yes(dl_ratio >= 0.9)),
        (f"vypusk peak RSS during {rss['parallel']} parallel {size_label} downloads",
         f"{peak_mb:.1f} MB", "—", "—", "< 100 MB", yes(peak_mb < 100)),
    ]
    out = []
    w = out.append
    w("# vypusk load benchmarks — results\n")
    w(f"Measured by `bench/run.sh` on {m['date']} (one run; all figures below come from it).\n")
    w("| figure | vypusk | nginx | ratio | target | met? |")
    w("|---|---:|---:|---:|---|---|")
    for row in rows:
        w("| " + " | ".join(row) + " |")
    w("")
    w("## Details\n")
    w("| measurement | vypusk | nginx |")
    w("|---|---:|---:|")
    w(f"| check latency p50 / p99, ms | {check['lat_p50_ms']:.2f} / {check['lat_p99_ms']:.2f} | "
      f"{nginx['lat_p50_ms']:.2f} / {nginx['lat_p99_ms']:.2f} |")
    w(f"| check requests in {p['duration_s']} s (non-2xx, socket errors) | {check['requests']:,} "
      f"({check['err_status']}, {check['err_connect'] + check['err_read'] + check['err_write'] + check['err_timeout']}) | "
      f"{nginx['requests']:,} ({nginx['err_status']}, {nginx['err_connect'] + nginx['err_read'] + nginx['err_write'] + nginx['err_timeout']}) |")
    if qid:
        w(f"| checks with a fresh `Licence-QueryID` each (every answer RSA-signed), req/s | "
          f"{qid['rps']:,.0f} (p99 {qid['lat_p99_ms']:.1f} ms) | — |")
    w(f"| {size_label} download, seconds per run | "
      f"{', '.join(f'{t:.2f}' for t in dl['vypusk']['seconds'])} | "
      f"{', '.join(f'{t:.2f}' for t in dl['nginx']['seconds'])} |")
    w(f"| {size_label} download from nginx with `sendfile off`, MiB/s | — | "
      f"{dl['nginx_nosendfile']['mib_s']:,.0f} (vypusk = {dl['vypusk']['mib_s'] / dl['nginx_nosendfile']['mib_s']:.2f}×) |")
    par_bytes = rss["parallel"] * mib
    w(f"| {rss['parallel']} parallel {size_label} downloads: wall s (aggregate MiB/s) | "
      f"{rss['vypusk_wall_s']:.2f} ({par_bytes / rss['vypusk_wall_s']:,.0f}) | "
      f"{rss['nginx_wall_s']:.2f} ({par_bytes / rss['nginx_wall_s']:,.0f}) |")
    w(f"| vypusk RSS before the parallel downloads / peak during them | "
      f"{rss['before_kib'] / 1024:.1f} MiB / {peak_kib / 1024:.1f} MiB "
      f"({'VmHWM reset before' if rss['vmhwm_reset_before'] else 'polled VmRSS'}) | — |")
    fresh = r.get("rss_fresh")
    if fresh:
        w(f"| the same after restarting vypusk on the same data: RSS after start (startup peak) / "
          f"peak during {rss['parallel']} parallel downloads | {fresh['before_kib'] / 1024:.1f} MiB "
          f"({fresh['startup_hwm_kib'] / 1024:.1f} MiB) / {fresh['peak_kib'] / 1024:.1f} MiB | — |")
    w(f"| vypusk RSS after seeding / after the check runs | {r['rss_after_seed_kib'] / 1024:.1f} MiB / "
      f"{r['rss_after_checks_kib'] / 1024:.1f} MiB | — |")
    w("")
    s, c, b = r["seed"], r["checks"], r["bigfile"]
    w("## Set-up of this run\n")
    w(f"- Data: {s['dists']} distributions × {s['releases']} releases × 2 files "
      f"({s['files']:,} files), {s['licenses']:,} licenses (1–3 features each), seeded through "
      f"the vendor API on SQLite + local object store: catalog in {s['seed_catalog_seconds']} s "
      f"({s['api_calls_per_second']} API calls/s, 8 client threads), licenses in "
      f"{s['seed_licenses_seconds']} s (CSV import in chunks below the 1 MiB body limit).")
    if s.get("server_errors_retried"):
        w(f"- **{s['server_errors_retried']} vendor API calls answered 5xx during seeding** and "
          f"succeeded when retried: " + "; ".join(f"`{e}`" for e in s["server_error_examples"]))
    w(f"- Checks: wrk {m['wrk']}, {p['wrk_threads']} threads, {p['connections']} keep-alive "
      f"connections, {p['duration_s']} s each, after a 3 s warm-up of vypusk; rotating through "
      f"{c['bodies']:,} different request bodies (see `seed.py` `check_mix`: 70 % active "
      f"license, 10 % lapsed subscription, 5 % key without the feature, 15 % free; "
      f"{c['empty_answers_share'] * 100:.0f} % get an empty list, {c['modules_mean']} modules on "
      f"average). Answers: median {c['answer_bytes_median']:,} B, mean "
      f"{c['answer_bytes_mean']:,} B, max {c['answer_bytes_max']:,} B. nginx serves the answer "
      f"of median size ({c['static_answer_modules']} module{'' if c['static_answer_modules'] == 1 else 's'}) as `/check.json` by GET. "
      f"The measured run started at second {r.get('second_of_minute_at_check_start', '?')} of "
      f"the minute (download-token expiries change every minute, which changes every body once).")
    w(f"- Downloads: `curl -o /dev/null` of the same {size_label} random file, from vypusk's "
      f"object store and from nginx's root (`sendfile on`), both in the page cache; upload "
      f"through the API took {b['upload_seconds']} s ({b['upload_mib_s']} MiB/s). Peak RSS: "
      f"`/proc/PID/status` VmHWM after resetting it (`echo 5 > clear_refs`), and VmRSS polled "
      f"every 50 ms; the larger is shown. 1 MB = 10⁶ bytes.")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}, kernel "
      f"{m['kernel']}; nginx {m['nginx']} (2 workers, access log off); vypusk "
      f"{m['vypusk_commit']} release build, default settings. Load average at start "
      f"{m['loadavg_start']}, at end {r.get('machine_end', {}).get('loadavg_end', '?')} "
      f"(the machine is shared: wrk, curl and the server under test share its cores).")
    w("")
    w("Re-run: `bench/run.sh` (see bench/README.md).\n")
    text = "\n".join(out)
    if os.path.exists(dst):
        old = open(dst).read()
        if MARK in old:
            text += "\n" + old[old.index(MARK):]
    else:
        text += f"\n{MARK}\n"
    open(dst, "w").write(text if text.endswith("\n") else text + "\n")


if __name__ == "__main__":
    main()
