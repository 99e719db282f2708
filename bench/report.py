#!/usr/bin/env python3
"""Renders results.json (written by run.sh) as RESULTS.md.

Everything from the line `<!-- analysis -->` on in an existing RESULTS.md is kept, so the
hand-written explanation of the figures survives a re-run (re-read it against the new figures).
"""

import json
import os
import sys

MARK = "<!-- analysis -->"
# "RSS flat" under the parallel downloads: the peak grows by less than this over the RSS just
# before them. Each download holds a few 1 MiB chunks in flight, so 8 of them ~25 MB; memory
# that grew with the file size would show hundreds of MB per GiB.
FLAT_MB = 50


def mb(kib):
    """KiB (as /proc reports them) → MB (10⁶ bytes)."""
    return kib * 1024 / 1e6


def main():
    src, dst = sys.argv[1], sys.argv[2]
    r = json.load(open(src))
    m, p = r["machine"], r["params"]
    check, nginx, qid = r["wrk_check"], r["wrk_nginx"], r["wrk_check_queryid"]
    dl, rss, up = r["download"], r["rss"], r["upload"]
    ossl, start, imp = r["openssl"], r["startup"], r["import"]
    s, c = r["seed"], r["checks"]
    mib = p["big_mib"]
    size_label = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
    data_label = (f"{s['dists']}×{s['releases']}×2 + {s['licenses'] / 1000:g} k licenses "
                  f"({s.get('features_per_license', 2)} features)")

    def yes(ok):
        return "**yes**" if ok else "**no**"

    check_ratio = check["rps"] / nginx["rps"]
    qid_ratio = qid["rps"] / ossl["sign_per_s"]
    dl_ratio = dl["vypusk"]["mb_s"] / dl["nginx"]["mb_s"]
    peak_kib = max(rss["vmhwm_kib"], rss["peak_polled_kib"])
    growth_mb = mb(peak_kib - rss["before_kib"])
    up_ratio = up["md5sum_median_s"] / up["upload_median_s"]
    start_mb = mb(start["rss_kib"])
    imp_mb = mb(max(imp["rss_after_kib"], imp["rss_idle_kib"]))
    rows = [
        (f"`getAvailableReleases` req/s, the check mix on {data_label}",
         f"{check['rps']:,.0f}",
         f"{nginx['rps']:,.0f} (nginx: the same answers as static files)",
         f"{check_ratio:.2f}", "≥ 0.5×", yes(check_ratio >= 0.5)),
        ("the same with a fresh `Licence-QueryID` per request (every answer RSA-signed)",
         f"{qid['rps']:,.0f}",
         f"{ossl['sign_per_s']:,.0f} (`openssl speed -multi 2 rsa2048` signs/s)",
         f"{qid_ratio:.2f}", "≥ 0.8×", yes(qid_ratio >= 0.8)),
        (f"{size_label} download, MB/s (median of {len(dl['vypusk']['seconds'])}); RSS growth "
         f"under {rss['parallel']} parallel",
         f"{dl['vypusk']['mb_s']:,.0f}; +{growth_mb:.1f} MB",
         f"{dl['nginx']['mb_s']:,.0f} (nginx, `sendfile on`)", f"{dl_ratio:.2f}",
         f"≥ 0.9×, RSS flat (< +{FLAT_MB} MB)", yes(dl_ratio >= 0.9 and growth_mb < FLAT_MB)),
        (f"{size_label} upload through the vendor API, wall s (median of "
         f"{len(up['upload_seconds'])}); ratio = md5sum s / upload s",
         f"{up['upload_median_s']:.2f}",
         f"{up['md5sum_median_s']:.2f} (`md5sum` of the same file)", f"{up_ratio:.2f}",
         "≥ 0.8×", yes(up_ratio >= 0.8)),
        (f"RSS 2 s after start on {data_label}; time until `/readyz` answers 200",
         f"{start_mb:.1f} MB; {start['ready_s']:.2f} s", "—", "—", "< 100 MB; < 3 s",
         yes(start_mb < 100 and start["ready_s"] < 3)),
        (f"RSS after importing {imp['licenses']:,} licenses through the API into a running "
         f"server (after / 2 s later)",
         f"{mb(imp['rss_after_kib']):.1f} / {mb(imp['rss_idle_kib']):.1f} MB", "—", "—",
         "< 100 MB", yes(imp_mb < 100)),
    ]
    out = []
    w = out.append
    w("# vypusk load benchmarks — results\n")
    small = " **Small mode (`BENCH_SMALL=1`): sizes below the goals' own, so the goals do not " \
            "apply.**" if p.get("small") else ""
    w(f"Measured by `bench/run.sh` on {m['date']} (one run; all figures below come from it; "
      f"each ratio is against a reference measured in the same run).{small}\n")
    w("| figure | vypusk | reference | ratio | goal | met? |")
    w("|---|---:|---:|---:|---|---|")
    for row in rows:
        w("| " + " | ".join(row) + " |")
    w("")
    w("## Details\n")
    w("| measurement | vypusk | reference |")
    w("|---|---:|---:|")

    def errs(x):
        return x["err_connect"] + x["err_read"] + x["err_write"] + x["err_timeout"]

    w(f"| check latency p50 / p99, ms | {check['lat_p50_ms']:.2f} / {check['lat_p99_ms']:.2f} | "
      f"nginx {nginx['lat_p50_ms']:.2f} / {nginx['lat_p99_ms']:.2f} |")
    w(f"| check requests in {p['duration_s']} s (non-2xx, socket errors) | {check['requests']:,} "
      f"({check['err_status']}, {errs(check)}) | nginx {nginx['requests']:,} "
      f"({nginx['err_status']}, {errs(nginx)}) |")
    w(f"| bytes per response, headers included (wrk) | "
      f"{check['bytes'] / max(check['requests'], 1):,.0f} | "
      f"nginx {nginx['bytes'] / max(nginx['requests'], 1):,.0f} |")
    w(f"| fresh `Licence-QueryID` checks: req/s, p50 / p99 ms (non-2xx, socket errors) | "
      f"{qid['rps']:,.0f}, {qid['lat_p50_ms']:.1f} / {qid['lat_p99_ms']:.1f} "
      f"({qid['err_status']}, {errs(qid)}) | openssl: {ossl['sign_per_s']:,.0f} signs/s, "
      f"{ossl['verify_per_s']:,.0f} verifies/s (2 processes) |")
    w(f"| {size_label} download, seconds per run | "
      f"{', '.join(f'{t:.2f}' for t in dl['vypusk']['seconds'])} | nginx "
      f"{', '.join(f'{t:.2f}' for t in dl['nginx']['seconds'])} |")
    w(f"| {size_label} download from nginx with `sendfile off`, MB/s | — | "
      f"{dl['nginx_nosendfile']['mb_s']:,.0f} (vypusk = "
      f"{dl['vypusk']['mb_s'] / dl['nginx_nosendfile']['mb_s']:.2f}×) |")
    par_mb = rss["parallel"] * mib * 2**20 / 1e6
    w(f"| {rss['parallel']} parallel {size_label} downloads: wall s (aggregate MB/s) | "
      f"{rss['vypusk_wall_s']:.2f} ({par_mb / rss['vypusk_wall_s']:,.0f}) | "
      f"nginx {rss['nginx_wall_s']:.2f} ({par_mb / rss['nginx_wall_s']:,.0f}) |")
    w(f"| vypusk RSS before / peak during / 1 s after the {rss['parallel']} parallel downloads | "
      f"{mb(rss['before_kib']):.1f} / {mb(peak_kib):.1f} / {mb(rss['after_kib']):.1f} MB "
      f"({'VmHWM reset before, and VmRSS polled' if rss['vmhwm_reset_before'] else 'polled VmRSS'}) | — |")
    w(f"| {size_label} upload, wall s per round; server CPU s per upload | "
      f"{', '.join(f'{t:.2f}' for t in up['upload_seconds'])}; "
      f"{', '.join(f'{t:.2f}' for t in up['server_cpu_seconds'])} | md5sum "
      f"{', '.join(f'{t:.2f}' for t in up['md5sum_seconds'])} |")
    w(f"| start-up on the seeded data: s until `/readyz` is 200; RSS then / 2 s later / "
      f"peak (VmHWM) | {start['ready_s']:.2f}; {mb(start['rss_at_ready_kib']):.1f} / "
      f"{mb(start['rss_kib']):.1f} / {mb(start['hwm_kib']):.1f} MB | — |")
    w(f"| license import into a fresh server: {imp['license_lines']:,} CSV lines in "
      f"{imp['license_imports']} requests, s; RSS before / after / 2 s later / peak | "
      f"{imp['seconds']}; {mb(imp['rss_before_kib']):.1f} / {mb(imp['rss_after_kib']):.1f} / "
      f"{mb(imp['rss_idle_kib']):.1f} / {mb(imp['hwm_kib']):.1f} MB | — |")
    w(f"| RSS of the server that was seeded through the API, after seeding; of the restarted "
      f"one after the check runs | {mb(r['rss_after_seed_kib']):.1f} MB; "
      f"{mb(r['rss_after_checks_kib']):.1f} MB | — |")
    w("")
    w("## Set-up of this run\n")
    w(f"- Data: {s['dists']} distributions × {s['releases']} releases × 2 files "
      f"({s['files']:,} files), {s['licenses']:,} licenses with "
      f"{s.get('features_per_license', 2)} features each (one in ten with a subscription that "
      f"lapsed in 2020), seeded through the vendor API on SQLite + local object store: catalog "
      f"in {s['seed_catalog_seconds']} s ({s['api_calls_per_second']} API calls/s, 8 client "
      f"threads), licenses in {s['seed_licenses_seconds']} s (CSV import in chunks below the "
      f"1 MiB body limit). Then vypusk is stopped and started again on the same data dir: the "
      f"start-up figures, and everything after them, come from that restarted server.")
    if s.get("server_errors_retried"):
        w(f"- **{s['server_errors_retried']} vendor API calls answered 5xx during seeding** and "
          f"succeeded when retried: " + "; ".join(f"`{e}`" for e in s["server_error_examples"]))
    w(f"- Checks: wrk {m['wrk']}, {p['wrk_threads']} threads, {p['connections']} keep-alive "
      f"connections, {p['duration_s']} s each, after a 3 s warm-up of vypusk; rotating through "
      f"{c['bodies']:,} different request bodies (see `seed.py` `check_mix`: 70 % active "
      f"license, 10 % lapsed subscription, 5 % key without the feature, 15 % free; "
      f"{c['empty_answers_share'] * 100:.0f} % get an empty list, {c['modules_mean']} modules on "
      f"average). Answers: median {c['answer_bytes_median']:,} B, mean "
      f"{c['answer_bytes_mean']:,} B, max {c['answer_bytes_max']:,} B. nginx serves vypusk's "
      f"answer to each body, saved byte for byte when the bodies were verified, as "
      f"`/answers/N.json`, and wrk GETs them in the same order as it POSTs the bodies to vypusk. "
      f"The measured run started at second {r.get('second_of_minute_at_check_start', '?')} of "
      f"the minute (download-token expiries change every minute, which changes every body "
      f"once).")
    w(f"- RSA reference: `openssl speed -seconds {p['openssl_seconds']} -multi 2 rsa2048` "
      f"({m.get('openssl', '?')}), sign/s of both processes together, run right after the "
      f"check runs.")
    w(f"- Upload: `curl -T` of a {size_label} random file to `PUT /api/v1/releases/{{id}}/files/"
      f"big.bin` (the second round replaces the first), alternating with `md5sum` of the same "
      f"file, twice; the file is in the page cache for both.")
    w(f"- Downloads: `curl -o /dev/null` of the same file, from vypusk's object store and from "
      f"nginx's root (`sendfile on`), both in the page cache, alternating. Peak RSS: "
      f"`/proc/PID/status` VmHWM after resetting it (`echo 5 > clear_refs`), and VmRSS polled "
      f"every 50 ms; the larger is shown. 1 MB = 10⁶ bytes.")
    w(f"- Import: a fresh vypusk (empty data dir, nothing else in it) gets the same "
      f"{imp['licenses']:,} licenses through `POST /api/v1/licenses/import` as the seeding did.")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}, kernel "
      f"{m['kernel']}; nginx {m['nginx']} (2 workers, access log off); vypusk "
      f"{m['vypusk_commit']} release build, default settings. Load average at start "
      f"{m['loadavg_start']}, at end {r.get('machine_end', {}).get('loadavg_end', '?')} "
      f"(wrk, curl, openssl and the servers under test share the machine's cores).")
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
