-- SPDX-License-Identifier: Apache-2.0
-- bench/api_seed.sql: the data set of bench/api.py, set-based (generate_series), run by
-- bench/api.py as the database superuser in one transaction on a database of its own
-- after emptying the tables it fills. psql-style variables are replaced by api.py:
--   :events    number of events (100,000)
--   :accounts  number of accounts (200); account k is 'acct-' || lpad(k, 3, '0')
--   :per_event alerts per event (10)
-- Every "random" figure is a hash of the row number, so two seeds give the same rows
-- (relative to the time of seeding).
--
-- Shape, close to what the correlator leaves behind:
--   events: last_seen uniform over the last 170 days, lasting up to 36 hours; accounts
--     skewed (a few big tenants: account = floor(accounts * u^1.6)); level critical 10 %,
--     high 25 %, medium 35 %, low 30 %; status by age (a week or younger: unhandled 50 %,
--     handling 30 %, handled 18 %, failed 2 %; older: 15 / 5 / 77 / 3 %); urgency from
--     the level (act_now only for critical and high); owner none for 70 % of the
--     unhandled and 15 % of the others, else one of 25 analysts; 1 to 3 ATT&CK stages,
--     1 or 2 sources, 1 to 3 assets, a name from 24 attack names and its first asset;
--     the assessment's reasons and a recommendation.
--   alerts: :per_event per event, spread over the event's span, on its assets; 8 types,
--     severities, defences (none 70 %, blocked 20 %, failed 8 %, precision 2 %), input
--     formats; their status follows the event's.
--   event_alerts: one row per alert.  entity_alerts: the host of every alert, the
--     attacker's IP on alerts 0 and 5 of every event, a file on alert 1.
SET search_path = cwpp;
SET LOCAL synchronous_commit = off;

CREATE TEMP TABLE bench_ev ON COMMIT DROP AS
SELECT i,
       'ev-bench-' || lpad(i::text, 7, '0') AS event_id,
       'acct-' || lpad(least(floor(:accounts * power(u[1], 1.6)), :accounts - 1)::int::text, 3, '0')
           AS account_id,
       now() - u[2] * interval '170 days' AS last_seen,
       u[3] * interval '36 hours' AS span,
       CASE WHEN u[4] < 0.10 THEN 'critical' WHEN u[4] < 0.35 THEN 'high'
            WHEN u[4] < 0.70 THEN 'medium' ELSE 'low' END AS level,
       CASE WHEN u[2] * 170 < 7 THEN
                CASE WHEN u[5] < 0.50 THEN 'unhandled' WHEN u[5] < 0.80 THEN 'handling'
                     WHEN u[5] < 0.98 THEN 'handled' ELSE 'failed' END
            ELSE
                CASE WHEN u[5] < 0.15 THEN 'unhandled' WHEN u[5] < 0.20 THEN 'handling'
                     WHEN u[5] < 0.97 THEN 'handled' ELSE 'failed' END
       END AS status,
       u[6] AS u_urg, u[7] AS u_owner, u[8] AS u_owner2,
       1 + floor(u[9] * 3)::int AS n_stages, floor(u[10] * 14)::int AS stage0,
       1 + floor(u[11] * 1.999)::int AS n_sources, floor(u[12] * 8)::int AS source0,
       1 + floor(u[13] * 3)::int AS n_assets, floor(u[14] * 60)::int AS asset0,
       floor(u[15] * 24)::int AS name_ix, floor(u[16] * 250)::int AS ip
  FROM (SELECT i, ARRAY(SELECT (hashint8(i::bigint * 64 + k) & 2147483647)::float8 / 2147483648.0
                          FROM generate_series(1, 16) k) AS u
          FROM generate_series(1, :events) i) s;

CREATE TEMP TABLE bench_names ON COMMIT DROP AS
SELECT ordinality - 1 AS ix, n AS name FROM unnest(ARRAY[
    'Brute force against SSH', 'Crypto miner found', 'Reverse shell', 'Web shell upload',
    'Privilege escalation via sudo', 'Suspicious process tree', 'Port scan from outside',
    'Credential dumping', 'Lateral movement over SMB', 'Ransomware behaviour',
    'Persistence via cron', 'Trojan program', 'Data exfiltration over DNS',
    'Container escape attempt', 'Malicious download', 'Kernel module loaded',
    'Password spraying', 'Suspicious outbound connection', 'Log tampering',
    'Unexpected listening port', 'Binary replaced in /usr/bin', 'Fileless malware',
    'Account created by a web process', 'Mass file encryption']) WITH ORDINALITY AS t(n);

INSERT INTO events (event_id, account_id, name, level, status, first_seen, last_seen,
                    alert_count, occurrences, asset_count, stages, sources, owner, urgency,
                    assessment, summary, version, level_source, status_changed_at, handled_at,
                    created_at, updated_at)
SELECT b.event_id, b.account_id,
       n.name || ' on ' || b.account_id || '-h' || b.asset0,
       b.level, b.status, b.last_seen - b.span, b.last_seen,
       :per_event, :per_event + (b.i % 7), b.n_assets,
       ARRAY(SELECT (ARRAY['TA0043', 'TA0042', 'TA0001', 'TA0002', 'TA0003', 'TA0004',
                           'TA0005', 'TA0006', 'TA0007', 'TA0008', 'TA0009', 'TA0011',
                           'TA0010', 'TA0040'])[1 + (b.stage0 + 3 * k) % 14]
               FROM generate_series(0, b.n_stages - 1) k),
       ARRAY(SELECT (ARRAY['virus_scan', 'process_monitor', 'logon_monitor', 'falco', 'wazuh',
                           'network_ids', 'file_integrity', 'web_firewall'])[1 + (b.source0 + k) % 8]
               FROM generate_series(0, b.n_sources - 1) k),
       CASE WHEN b.u_owner < (CASE WHEN b.status = 'unhandled' THEN 0.70 ELSE 0.15 END) THEN NULL
            ELSE 'analyst-' || lpad((1 + floor(b.u_owner2 * 25))::int::text, 2, '0') END,
       CASE WHEN b.level IN ('critical', 'high') THEN
                CASE WHEN b.u_urg < 0.20 THEN 'act_now' WHEN b.u_urg < 0.60 THEN 'high'
                     WHEN b.u_urg < 0.90 THEN 'medium' ELSE 'low' END
            ELSE
                CASE WHEN b.u_urg < 0.10 THEN 'high' WHEN b.u_urg < 0.50 THEN 'medium'
                     ELSE 'low' END END,
       jsonb_build_object(
           'reasons', jsonb_build_array(
               jsonb_build_object('code', 'core_asset', 'text', 'The asset is a core asset.'),
               jsonb_build_object('code', 'spreading', 'text',
                                  b.n_assets || ' assets affected.')),
           'recommendations', jsonb_build_array(jsonb_build_object(
               'action', 'block_ip', 'entity_type', 'ip',
               'entity_value', '198.51.100.' || b.ip, 'reason', 'The attacker''s address.')),
           'assessed_at', (extract(epoch FROM b.last_seen) * 1000)::bigint),
       json_build_object('assets', b.n_assets, 'ips', 1),
       :per_event, 'correlator',
       CASE WHEN b.status <> 'unhandled' THEN b.last_seen + interval '1 hour' END,
       CASE WHEN b.status = 'handled' THEN b.last_seen + interval '2 hours' END,
       b.last_seen - b.span, b.last_seen
  FROM bench_ev b JOIN bench_names n ON n.ix = b.name_ix;

CREATE TEMP TABLE bench_al ON COMMIT DROP AS
SELECT b.event_id, b.account_id, k,
       'al-bench-' || lpad(b.i::text, 7, '0') || '-' || k AS alert_id,
       b.account_id || '-h' || (b.asset0 + k % b.n_assets) AS asset_id,
       b.last_seen - b.span + b.span * (k::float8 / greatest(:per_event - 1, 1)) AS seen,
       b.status, b.ip, b.i,
       (hashint8(b.i::bigint * 64 + 32 + k) & 2147483647)::float8 / 2147483648.0 AS u
  FROM bench_ev b, generate_series(0, :per_event - 1) k;

INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, severity, source,
                    input_format, asset_id, asset, attack_tactic, defense, remote_ip, details,
                    status, first_seen, last_seen, occurrences, ingested_at, updated_at)
SELECT a.alert_id, a.alert_id, a.account_id,
       (ARRAY['Trojan program', 'Brute force', 'Web shell', 'Reverse shell', 'Crypto miner',
              'Privilege escalation', 'Suspicious process', 'Port scan'])[1 + (a.i + a.k) % 8]
           || ' ' || (a.k + 1),
       (ARRAY['virus', 'brute_force', 'webshell', 'reverse_shell', 'crypto_miner',
              'privilege_escalation', 'suspicious_process', 'port_scan'])[1 + (a.i + a.k) % 8],
       (ARRAY['critical', 'high', 'high', 'medium', 'medium', 'medium', 'low', 'low'])
           [1 + floor(a.u * 8)::int],
       (ARRAY['virus_scan', 'process_monitor', 'logon_monitor', 'falco', 'wazuh',
              'network_ids', 'file_integrity', 'web_firewall'])[1 + (a.i + a.k) % 8],
       CASE WHEN (a.i + a.k) % 8 = 3 THEN 'falco' WHEN (a.i + a.k) % 8 = 4 THEN 'wazuh'
            ELSE 'cwpp' END,
       a.asset_id,
       jsonb_build_object('id', a.asset_id, 'name', a.asset_id || '.internal',
                          'role', (ARRAY['web', 'db', 'application', 'cache'])[1 + a.i % 4],
                          'ips', jsonb_build_array('10.' || (a.i % 250) || '.' || a.k || '.1')),
       'TA0002',
       CASE WHEN a.u < 0.70 THEN 'none' WHEN a.u < 0.90 THEN 'blocked'
            WHEN a.u < 0.98 THEN 'failed' ELSE 'precision_defense' END,
       '198.51.100.' || a.ip,
       jsonb_build_object('seq', a.k, 'engine', 'bench'),
       CASE a.status WHEN 'handled' THEN 'handled' WHEN 'handling' THEN 'handling'
                     ELSE 'unhandled' END,
       a.seen, a.seen, 1 + (a.i + a.k) % 3, a.seen, a.seen
  FROM bench_al a;

INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, last_seen, occurrences,
                          joined_at, seq)
SELECT a.event_id, a.alert_id,
       CASE WHEN a.k = 0 THEN 'opens a new event' ELSE 'same asset' END,
       a.seen, a.seen, 1 + (a.i + a.k) % 3, a.seen, 1 + (a.i + a.k) % 3
  FROM bench_al a;

INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, event_id, alert_id,
                           first_seen, last_seen)
SELECT a.account_id, 'host', a.asset_id, a.asset_id, a.event_id, a.alert_id, a.seen, a.seen
  FROM bench_al a
UNION ALL
SELECT a.account_id, 'ip', '198.51.100.' || a.ip, '', a.event_id, a.alert_id, a.seen, a.seen
  FROM bench_al a WHERE a.k IN (0, 5)
UNION ALL
SELECT a.account_id, 'file', '/var/tmp/.cache/x' || (a.i % 5000), a.asset_id, a.event_id,
       a.alert_id, a.seen, a.seen
  FROM bench_al a WHERE a.k = 1;
