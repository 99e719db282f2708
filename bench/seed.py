#!/usr/bin/env python3
"""Seeds a running vypusk through its vendor API and prepares the inputs of the load runs.

Standard library only (http.client + threads), so a fresh machine needs nothing from PyPI.

  seed.py seed     --url URL --password PW --dists N --releases N --licenses N --out DIR
  seed.py licenses --url URL --password PW --dists N --licenses N --out DIR
  seed.py checks   --url URL --out DIR [--answers WWWDIR] [--count N]
  seed.py bigdraft --url URL --password PW --out DIR
  seed.py bigpublish --url URL --password PW --out DIR

`seed` creates N distributions (one in ten free, the rest paid), each with N published releases
of two small unique files, and N licenses of 2 features each (imported as CSV in chunks below
the 1 MiB body limit). It writes DIR/catalog.json describing what it made.

`licenses` imports only the licenses (the same N licenses as `seed`, for a server without the
distributions: the import does not check that the features exist) and writes
DIR/licenses.json with the time it took.

`checks` builds the getAvailableReleases request bodies that wrk rotates through (a mix of
distributions, license standings and installed versions), sends each once to verify it answers
200 with the expected number of modules, and writes DIR/checks.txt (one JSON body a line); with
--answers, also vypusk's answer to the body of line N, byte for byte, as WWWDIR/N.json (N from
1), which nginx serves as static files in the same order.

`bigdraft` creates a free distribution BENCH_BIG with one draft release and writes its id to
DIR/bigfile-release.txt (run.sh uploads the big file into it with curl); `bigpublish` publishes
that release, asks for the download link of its file and writes it to DIR/bigfile-url.txt.
"""

import argparse
import base64
import concurrent.futures as cf
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse

CONF = "УправлениеТорговлей"
CONF2 = "КомплекснаяАвтоматизация"


SERVER_ERRORS = []  # (method, path, status, body) of 5xx answers that a retry got past


class Client:
    """One keep-alive HTTP/1.1 connection per thread."""

    _local = threading.local()

    def __init__(self, url, password=None):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.auth = None
        if password is not None:
            token = base64.b64encode(f"admin:{password}".encode()).decode()
            self.auth = f"Basic {token}"

    def _conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self._local.conn = c
        return c

    def call(self, method, path, body=None, content_type="application/json", expect=(200, 201),
             raw=False):
        headers = {}
        if self.auth:
            headers["Authorization"] = self.auth
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
        if body is not None:
            headers["Content-Type"] = content_type
            if isinstance(body, (bytes, bytearray)):
                headers["Content-Length"] = str(len(body))
        for attempt in range(3):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2 or not isinstance(body, (bytes, type(None))):
                    raise
                time.sleep(0.2)
                continue
            # A 5xx is a server bug; retry it (uploads, creates and publishes are safe to
            # repeat after a failure) but keep a record for the report.
            if resp.status >= 500 and attempt < 2:
                SERVER_ERRORS.append((method, path, resp.status, data[:300].decode(errors="replace")))
                print(f"  warning: {method} {path} -> {resp.status}: {data[:200]!r}; retrying",
                      file=sys.stderr, flush=True)
                time.sleep(0.2)
                continue
            break
        if resp.status not in expect:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {data[:500]!r}")
        if raw:
            return resp.status, data
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(data)
        return resp.status, data


def version(j):
    """Release j (0-based) of a distribution: strictly increasing, multi-digit parts."""
    return f"{1 + j // 10}.{j % 10}.{(j * 7) % 13}.{100 + j}"


def dist_code(i):
    return f"BENCH_{i:04d}"


def is_free(i):
    return i % 10 == 9


def gate(i):
    """(lic_product_id, lic_feature_id) of distribution i: 50 products, features numbered."""
    return (1000 + i // 10, i)


def compat(i, j):
    if i % 5 == 4:
        return [{"conf": "*", "min_1c_version": "0"}]
    return [
        {"conf": CONF, "min_1c_version": f"11.4.{(j * 3) % 20}.{j}"},
        {"conf": CONF2, "min_1c_version": f"2.4.{j % 10}.1"},
    ]


def changelog(i, j):
    lines = [f"## {version(j)}", ""]
    for n in range(1 + (i + j) % 4):
        lines.append(f"- Исправлена ошибка №{1000 + i * 40 + j * 3 + n} при обмене с ККТ (задача {n}).")
    lines.append("- Улучшена производительность формы списка звонков.")
    return "\n".join(lines)


def seed_distribution(client, i, releases):
    code = dist_code(i)
    product, feature = (None, None) if is_free(i) else gate(i)
    client.call(
        "POST",
        "/api/v1/distributions",
        {
            "code": code,
            "name": f"Подсистема телефонии {i} для УТ",
            "description": f"Тестовое расширение №{i} для нагрузочного теста vypusk.",
            "developer": "BENCH",
            "label": "BENCH",
            "promo_link": f"https://example.com/products/{code}",
            "lic_product_id": product,
            "lic_feature_id": feature,
            "published": True,
        },
    )
    for j in range(releases):
        v = version(j)
        _, rel = client.call(
            "POST",
            f"/api/v1/distributions/{code}/releases",
            {
                "version": v,
                "changelog": changelog(i, j),
                "compatibility": compat(i, j),
                "metadata": {"extension_hash": f"{i:08x}{j:08x}"},
            },
        )
        rid = rel["id"]
        # Two small unique files: the extension (main) and a readme.
        body = (f"PK-bench {code} {v} ".encode() * 64)[: 2000 + (i * 37 + j * 11) % 3000]
        client.call("PUT", f"/api/v1/releases/{rid}/files/{code}.zip", body, "application/octet-stream")
        readme = f"{code} {v}\n{changelog(i, j)}\n".encode()
        client.call("PUT", f"/api/v1/releases/{rid}/files/README.txt", readme, "application/octet-stream")
        client.call("POST", f"/api/v1/releases/{rid}/publish", {})
    return code


FEATURES_PER_LICENSE = 2


def license_key(n):
    return f"BENCH-{n:05d}-{(n * 7919) % 100000:05d}-{(n * 104729) % 100000:05d}"


def license_plan(n, dists):
    """Features of license n: (distribution index, active_until or '').

    Each license holds exactly 2 paid distributions (features). One license in ten has a
    subscription that lapsed in 2020 (so no release is downloadable), the rest never lapse or
    run until 2099.
    """
    paid = [i for i in range(dists) if not is_free(i)]
    rnd = random.Random(n)
    picks = rnd.sample(paid, min(len(paid), FEATURES_PER_LICENSE))
    until = "2020-06-30" if n % 10 == 3 else ("2099-12-31" if n % 2 else "")
    return [(i, until) for i in picks]


def seed(args):
    client = Client(args.url, args.password)
    t0 = time.time()
    done = 0
    with cf.ThreadPoolExecutor(args.threads) as pool:
        futures = [pool.submit(seed_distribution, client, i, args.releases)
                   for i in range(args.dists)]
        for f in cf.as_completed(futures):
            if f.exception() is not None:
                for other in futures:
                    other.cancel()
                raise f.exception()
            done += 1
            if done % 50 == 0 or done == args.dists:
                el = time.time() - t0
                print(f"  distributions: {done}/{args.dists} ({el:.0f} s, "
                      f"{done * args.releases * 4 / el:.0f} API calls/s)", flush=True)
    t_catalog = time.time() - t0

    t_lic, n_lines, n_chunks = import_licenses(client, args.licenses, args.dists)

    catalog = {
        "dists": args.dists,
        "releases": args.releases,
        "licenses": args.licenses,
        "features_per_license": FEATURES_PER_LICENSE,
        "license_lines": n_lines,
        "license_imports": n_chunks,
        "files": args.dists * args.releases * 2,
        "seed_catalog_seconds": round(t_catalog, 1),
        "seed_licenses_seconds": round(t_lic, 1),
        "api_calls_per_second": round((args.dists * (1 + 4 * args.releases)) / t_catalog, 1),
        "server_errors_retried": len(SERVER_ERRORS),
        "server_error_examples": sorted({f"{m} {st}: {b}" for m, _, st, b in SERVER_ERRORS})[:5],
    }
    with open(os.path.join(args.out, "catalog.json"), "w") as f:
        json.dump(catalog, f, indent=1)


def licenses(args):
    client = Client(args.url, args.password)
    t_lic, n_lines, n_chunks = import_licenses(client, args.licenses, args.dists)
    with open(os.path.join(args.out, "licenses.json"), "w") as f:
        json.dump({"licenses": args.licenses, "features_per_license": FEATURES_PER_LICENSE,
                   "license_lines": n_lines, "license_imports": n_chunks,
                   "seconds": round(t_lic, 1),
                   "server_errors_retried": len(SERVER_ERRORS)}, f, indent=1)


def import_licenses(client, count, dists):
    """Imports licenses 0..count-1 as CSV in chunks below the 1 MiB body limit (2 at a time).

    Returns (seconds, CSV lines, chunks)."""
    t1 = time.time()
    header = "key,customer,itn,beta,revoked,product,feature,active_until\n"
    lines = []
    for n in range(count):
        for i, until in license_plan(n, dists):
            p, f = gate(i)
            beta = "Y" if n % 50 == 0 else "N"
            lines.append(f"{license_key(n)},Клиент {n},{7700000000 + n},{beta},N,{p},{f},{until}\n")
    # Chunks below the 1 MiB body limit, never splitting one key's lines.
    chunks, cur, size = [], [], 0
    for line in lines:
        if size > 900_000 and not line.startswith(cur[-1].split(",", 1)[0] + ","):
            chunks.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += len(line.encode())
    if cur:
        chunks.append(cur)

    def import_chunk(c):
        client.call("POST", "/api/v1/licenses/import", (header + "".join(c)).encode(), "text/csv")

    with cf.ThreadPoolExecutor(2) as pool:
        list(pool.map(import_chunk, chunks))
    t_lic = time.time() - t1
    print(f"  licenses: {count} ({len(lines)} feature lines, {len(chunks)} imports) "
          f"in {t_lic:.1f} s", flush=True)
    return t_lic, len(lines), len(chunks)


def check_mix(cat, count, seed_value=1):
    """Request bodies for wrk with the module count each should get.

    Mix: 70 % paid distribution with an active license, 10 % lapsed subscription (listed, no
    links), 5 % a key without that distribution's feature (listed, no links), 15 % free
    distributions without a key. Installed versions: 40 % the newest (nothing to offer), 35 %
    one to three releases behind, 20 % anywhere, 5 % nothing installed. One check in ten comes
    from an older configuration (11.4.5.1) where only some releases are compatible, half of them
    with SHOW_UNTESTED=Y.
    """
    rnd = random.Random(seed_value)
    dists, releases, licenses = cat["dists"], cat["releases"], cat["licenses"]
    holders = {}  # distribution -> [(license n, until)]
    for n in range(licenses):
        for i, until in license_plan(n, dists):
            holders.setdefault(i, []).append((n, until))
    no_feature = {}
    out = []
    while len(out) < count:
        r = rnd.random()
        if r < 0.85:
            i = rnd.choice([i for i in holders])
            if r < 0.70:
                cands = [h for h in holders[i] if h[1] != "2020-06-30"] or holders[i]
                n, _ = rnd.choice(cands)
            elif r < 0.80:
                cands = [h for h in holders[i] if h[1] == "2020-06-30"] or holders[i]
                n, _ = rnd.choice(cands)
            else:
                if i not in no_feature:
                    held = {h[0] for h in holders[i]}
                    no_feature[i] = [n for n in range(0, licenses, 97) if n not in held][:50]
                n = rnd.choice(no_feature[i])
            key = license_key(n)
        else:
            i = rnd.choice([i for i in range(dists) if is_free(i)])
            key = ""
        r = rnd.random()
        if r < 0.40:
            installed = releases - 1
        elif r < 0.75:
            installed = max(0, releases - 1 - rnd.randint(1, 3))
        elif r < 0.95:
            installed = rnd.randrange(releases)
        else:
            installed = None
        old_conf = rnd.random() < 0.10
        untested = old_conf and rnd.random() < 0.5
        body = {
            "INSTALLED_VERSION": "" if installed is None else version(installed),
            "TYPE": dist_code(i),
            "CONF": CONF,
            "CONF_VERSION": "11.4.5.1" if old_conf else "11.5.20.73",
            "KEY": key,
            "SHOW_UNTESTED": "Y" if untested else "N",
            "COUNT_DOWNLOADS": "Y" if rnd.random() < 0.5 else "N",
        }
        newer = list(range(0 if installed is None else installed + 1, releases))
        if old_conf and not untested and i % 5 != 4:
            newer = [j for j in newer if (11, 4, (j * 3) % 20, j) <= (11, 4, 5, 1)]
        out.append((body, len(newer)))
    return out


def checks(args):
    with open(os.path.join(args.out, "catalog.json")) as f:
        cat = json.load(f)
    mix = check_mix(cat, args.count)
    client = Client(args.url)

    if args.answers:
        os.makedirs(args.answers, exist_ok=True)

    def send(numbered):
        n, (body, expected) = numbered
        _, data = client.call("POST", "/releases/v1/1c/getAvailableReleases", body, raw=True)
        got = len(json.loads(data)["modules"])
        if got != expected:
            raise RuntimeError(f"{body}: expected {expected} modules, got {got}")
        if args.answers:
            # The answer as vypusk sent it, for nginx to serve as the answer to request n.
            with open(os.path.join(args.answers, f"{n}.json"), "wb") as f:
                f.write(data)
        return len(data)

    with cf.ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(send, enumerate(mix, start=1)))
    with open(os.path.join(args.out, "checks.txt"), "w") as f:
        for body, _ in mix:
            f.write(json.dumps(body, ensure_ascii=False) + "\n")
    median = statistics.median_low(sizes)
    stats = {
        "bodies": len(mix),
        "answer_bytes_median": median,
        "answer_bytes_mean": round(statistics.mean(sizes)),
        "answer_bytes_max": max(sizes),
        "answer_bytes_total": sum(sizes),
        "modules_mean": round(statistics.mean(e for _, e in mix), 2),
        "empty_answers_share": round(sum(1 for _, e in mix if e == 0) / len(mix), 3),
    }
    with open(os.path.join(args.out, "checks.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(f"  {len(mix)} check bodies verified; answers median {median} B, "
          f"mean {stats['answer_bytes_mean']} B, max {max(sizes)} B", flush=True)


def bigdraft(args):
    client = Client(args.url, args.password)
    client.call(
        "POST",
        "/api/v1/distributions",
        {"code": "BENCH_BIG", "name": "Big file", "lic_product_id": None, "lic_feature_id": None,
         "published": True},
    )
    _, rel = client.call(
        "POST",
        "/api/v1/distributions/BENCH_BIG/releases",
        {"version": "1.0", "changelog": "big", "compatibility": [{"conf": "*", "min_1c_version": "0"}]},
    )
    with open(os.path.join(args.out, "bigfile-release.txt"), "w") as f:
        f.write(f"{rel['id']}\n")


def bigpublish(args):
    client = Client(args.url, args.password)
    with open(os.path.join(args.out, "bigfile-release.txt")) as f:
        rid = int(f.read())
    client.call("POST", f"/api/v1/releases/{rid}/publish", {})
    _, ans = Client(args.url).call(
        "POST",
        "/releases/v1/1c/getAvailableReleases",
        {"TYPE": "BENCH_BIG", "CONF": CONF, "CONF_VERSION": "11.5.20.73", "INSTALLED_VERSION": "",
         "COUNT_DOWNLOADS": "N"},
    )
    link = ans["modules"][0]["download_link"]
    with open(os.path.join(args.out, "bigfile-url.txt"), "w") as f:
        f.write(link + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["seed", "licenses", "checks", "bigdraft", "bigpublish"])
    p.add_argument("--url", required=True)
    p.add_argument("--password")
    p.add_argument("--out", required=True)
    p.add_argument("--dists", type=int, default=500)
    p.add_argument("--releases", type=int, default=40)
    p.add_argument("--licenses", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--answers", help="checks: folder for the answers (N.json)")
    args = p.parse_args()
    {"seed": seed, "licenses": licenses, "checks": checks, "bigdraft": bigdraft,
     "bigpublish": bigpublish}[args.command](args)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"seed.py: {e}", file=sys.stderr)
        sys.exit(1)
