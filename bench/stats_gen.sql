-- Synthetic statistics for bench/stats_bench.sh: raw events straight into the SQLite database
-- of a vypusk whose catalog (distributions, releases, files) was created through the API,
-- then the daily roll-ups built from them with the same keys the batch writer maintains.
--
-- Parameters come from the temp table `p` (checks, downloads, days, installations, start).
-- Shape: `installations` installations, each belonging to one distribution and one of 12
-- configurations, check once a day (round robin over `days` days); their installed version
-- climbs through the 10 releases over the period; downloads fetch the release current at
-- that day, 90 % of them completed.

PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -400000;

CREATE TEMP TABLE dist AS
  SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS idx, lic_product_id IS NOT NULL AS paid
  FROM distributions;
CREATE TEMP TABLE rel AS
  SELECT r.id, r.distribution_id, r.version,
         ROW_NUMBER() OVER (PARTITION BY r.distribution_id ORDER BY r.id) - 1 AS idx,
         (SELECT f.id FROM files f WHERE f.release_id = r.id ORDER BY f.id LIMIT 1) AS file_id,
         (SELECT f.size FROM files f WHERE f.release_id = r.id ORDER BY f.id LIMIT 1) AS size
  FROM releases r;
CREATE INDEX temp.rel_ix ON rel(distribution_id, idx);
CREATE INDEX temp.dist_ix ON dist(idx);
CREATE TEMP TABLE confs(idx INTEGER PRIMARY KEY, name TEXT);
INSERT INTO confs VALUES
  (0, 'УправлениеТорговлей'), (1, 'КомплекснаяАвтоматизация'), (2, 'БухгалтерияПредприятия'),
  (3, 'ЗарплатаИУправлениеПерсоналом'), (4, 'УправлениеПредприятием'), (5, 'РозницаБазовая'),
  (6, 'УправлениеНебольшойФирмой'), (7, 'Документооборот'), (8, 'ERP'), (9, 'CRM'),
  (10, 'ДокументооборотКОРП'), (11, 'БухгалтерияБазовая');
CREATE TEMP TABLE nd AS SELECT COUNT(*) AS n FROM dist;

-- Checks.
INSERT INTO check_events (at, distribution_id, installed_version, conf, conf_version,
                          offered_version, license_key, client_hash)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < (SELECT checks FROM p)),
g AS (
  SELECT i,
         i % (SELECT installations FROM p) AS inst,
         -- Newest day first, so the last days always have checks.
         (SELECT days FROM p) - 1 - (i / (SELECT installations FROM p)) % (SELECT days FROM p) AS day
  FROM n
),
h AS (
  SELECT g.*, inst % (SELECT n FROM nd) AS didx,
         MIN(9, MAX(-1, day * 10 / (SELECT days FROM p) + (inst % 3) - 1)) AS vidx
  FROM g
)
SELECT strftime('%Y-%m-%dT%H:%M:%S+00:00', (SELECT start FROM p) + h.day * 86400 + (h.inst * 7919) % 86400, 'unixepoch'),
       d.id,
       COALESCE((SELECT r.version FROM rel r WHERE r.distribution_id = d.id AND r.idx = h.vidx), ''),
       c.name, '11.5.' || (h.inst % 20) || '.1',
       (SELECT r.version FROM rel r WHERE r.distribution_id = d.id AND r.idx = 9),
       CASE WHEN d.paid THEN 'BENCH-' || h.inst ELSE NULL END,
       printf('%032x', h.inst * 2654435761)
FROM h JOIN dist d ON d.idx = h.didx JOIN confs c ON c.idx = h.inst % 12;

-- Downloads: the release current on that day; 10 % stop early.
INSERT INTO download_events (at, distribution_id, release_id, file_id, license_key, conf,
                             conf_version, installed_version, bytes, dedup_key, completed,
                             starts, completions)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < (SELECT downloads FROM p)),
g AS (
  SELECT i, (i * 7) % (SELECT installations FROM p) AS inst, (i * 37) % (SELECT days FROM p) AS day FROM n
),
h AS (
  SELECT g.*, inst % (SELECT n FROM nd) AS didx,
         MIN(9, day * 10 / (SELECT days FROM p)) AS ridx
  FROM g
)
SELECT strftime('%Y-%m-%dT%H:%M:%S+00:00', (SELECT start FROM p) + h.day * 86400 + (h.i * 104729) % 86400, 'unixepoch'),
       d.id, r.id, r.file_id,
       CASE WHEN d.paid THEN 'BENCH-' || h.inst ELSE NULL END,
       c.name, '11.5.' || (h.inst % 20) || '.1',
       COALESCE((SELECT r2.version FROM rel r2 WHERE r2.distribution_id = d.id AND r2.idx = h.ridx - 1), ''),
       CASE WHEN h.i % 10 = 0 THEN r.size / 3 ELSE r.size END,
       printf('bench%012d', h.i),
       h.i % 10 != 0,
       1, h.i % 10 != 0
FROM h JOIN dist d ON d.idx = h.didx
       JOIN rel r ON r.distribution_id = d.id AND r.idx = h.ridx
       JOIN confs c ON c.idx = h.inst % 12;

-- Roll-ups, keyed as the batch writer keys them.
INSERT INTO stats_daily_downloads (day, distribution_id, release_id, file_id, conf, downloads, completed, bytes)
SELECT substr(at, 1, 10), distribution_id, release_id, file_id, conf, COUNT(*), SUM(completed), SUM(bytes)
FROM download_events GROUP BY 1, 2, 3, 4, 5;
INSERT INTO stats_daily_license_downloads (day, distribution_id, release_id, license_key, downloads, completed, bytes)
SELECT substr(at, 1, 10), distribution_id, release_id, COALESCE(license_key, ''), COUNT(*), SUM(completed), SUM(bytes)
FROM download_events GROUP BY 1, 2, 3, 4;
INSERT INTO stats_daily_upgrades (day, distribution_id, installed_version, release_id, downloads)
SELECT substr(at, 1, 10), distribution_id, installed_version, release_id, COUNT(*)
FROM download_events GROUP BY 1, 2, 3, 4;
INSERT INTO stats_daily_checks (day, distribution_id, conf, installed_version, checks)
SELECT substr(at, 1, 10), distribution_id, conf, installed_version, COUNT(*)
FROM check_events GROUP BY 1, 2, 3, 4;
-- The newest check per installation (SQLite takes the bare columns from the max(at) row);
-- first_seen is not read by any report and is set to last_seen here.
INSERT INTO stats_installations (distribution_id, installation, conf, installed_version, conf_version, first_seen, last_seen)
SELECT c.distribution_id,
       CASE WHEN d.paid AND c.license_key IS NOT NULL THEN 'key:' || c.license_key ELSE 'addr:' || c.client_hash END AS inst,
       c.conf, c.installed_version, c.conf_version, MAX(c.at), MAX(c.at)
FROM check_events c JOIN dist d ON d.id = c.distribution_id
GROUP BY c.distribution_id, inst, c.conf;

-- Issue 13 reports. Licenses for the keys the checks name (three installations per
-- customer), one feature each whose subscription ends somewhere in the next 400 days.
INSERT OR IGNORE INTO licenses (key, customer, itn, revoked, beta, created_at, updated_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < (SELECT installations FROM p))
SELECT 'BENCH-' || i, 'ООО Клиент № ' || (i / 3), printf('77%08d', i / 3), i % 97 = 0, 0,
       strftime('%Y-%m-%dT%H:%M:%S+00:00', (SELECT start FROM p), 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%S+00:00', (SELECT start FROM p), 'unixepoch')
FROM n;
INSERT OR IGNORE INTO license_features (license_id, product, feature, active_until)
SELECT l.id, 100, l.id % 20,
       strftime('%Y-%m-%dT%H:%M:%S+00:00', (SELECT start FROM p) + ((SELECT days FROM p) + (l.id * 7919) % 400) * 86400, 'unixepoch')
FROM licenses l WHERE l.key LIKE 'BENCH-%';
-- Active installations per day, as the writer counts them (one per installation and day).
INSERT INTO stats_daily_active (day, distribution_id, installations)
SELECT substr(c.at, 1, 10), c.distribution_id,
       COUNT(DISTINCT CASE WHEN d.paid AND c.license_key IS NOT NULL THEN 'key:' || c.license_key ELSE 'addr:' || c.client_hash END || '|' || c.conf)
FROM check_events c JOIN dist d ON d.id = c.distribution_id
GROUP BY 1, 2;
-- Unknown keys: 50 keys a day over 5 000 distinct guesses, 1 to 7 attempts each.
INSERT INTO stats_daily_unknown_keys (day, distribution_id, license_key, attempts)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < (SELECT days FROM p) * 50)
SELECT strftime('%Y-%m-%d', (SELECT start FROM p) + (i / 50) * 86400, 'unixepoch'),
       (SELECT id FROM dist WHERE idx = i % 20), 'GUESS-' || (i % 5000), 1 + i % 7
FROM n WHERE 1
ON CONFLICT DO NOTHING;

ANALYZE;
