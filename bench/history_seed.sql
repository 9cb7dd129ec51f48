-- SPDX-License-Identifier: Apache-2.0
-- bench/history_seed.sql: one chunk of the history that bench/history.py stores before it
-- measures (its docstring says why it looks like this). bench/history.py runs it once per
-- chunk of events with the psql-style variables replaced: :e0 and :e1 (the chunk's
-- events, [e0, e1)), :E and :A (events and alerts in all), :P (distinct attacker IPs,
-- a multiple of 24 and of 3) and :t0 and :t1 (epoch seconds the events' starts spread
-- over). Event i holds alerts ceil(i*A/E) .. ceil((i+1)*A/E) - 1: A/E each (one more or
-- less), numbered and stored in time order.
--
-- Event i is incident i of the workload bench/pipeline.py produces (incident_alerts):
-- account bench-hist-acct-(i % 24), attacker IP ip_of(i % P), scenario i % 3, 1-3 own
-- assets i-<tag>-<inc>-<j> (tag: 6 hex per 10,000 incidents, one "earlier run"), two
-- malware hashes, the same alert kinds in the same order. The rows are those ingest and
-- the correlator store for such alerts: alerts, event_alerts, entity_alerts (host, file,
-- process, IP, host account as libs/alert extracts them; an IP row carries the alert's
-- asset), event_edges (cwpp_corr_edges) and event_keys (cwpp_corr_key_string: account,
-- kind, asset, value joined by 0x1f; an IP key is owned by the latest event of its IP).
DROP TABLE IF EXISTS h_alert;
CREATE TEMP TABLE h_alert AS
WITH ev AS (
    SELECT i,
           (i * :A + :E - 1) / :E AS g0,
           ((i + 1) * :A + :E - 1) / :E AS g1,
           i % 10000 AS inc,
           lpad(to_hex(((i / 10000) * 2654435761 + 12345) % 16777216), 6, '0') AS tag,
           'bench-hist-acct-' || lpad((i % 24)::text, 2, '0') AS acct,
           i % 3 AS sc,
           (hashint8(i) & 2147483647) AS h,
           to_timestamp(:t0 + (:t1 - :t0) * (i + 0.5) / :E) AS start,
           '198.' || (18 + ((i % :P) >> 16 & 1)) || '.' || ((i % :P) >> 8 & 255) || '.'
               || ((i % :P) & 255) AS ip
      FROM generate_series(:e0::bigint, :e1::bigint - 1) AS i
), al AS (
    SELECT ev.*, g, g - g0 AS k, (ARRAY[1, 1, 2, 3])[1 + h % 4] AS nassets,
           (hashint8(g) & 2147483647) AS ha
      FROM ev, generate_series(g0, g1 - 1) AS g
), kinds AS (
    SELECT al.*, (k % nassets) AS j,
           CASE WHEN k % 3 = 1 THEN 'malicious_process'
                WHEN k % 3 = 0 AND sc = 0 THEN 'virus'
                WHEN k % 3 = 0 AND sc = 2 THEN 'webshell'
                WHEN k % 3 = 0 THEN 'brute_force'
                WHEN sc = 1 THEN 'abnormal_logon'
                ELSE 'network_attack' END AS type,
           start + make_interval(secs => k * (10 + h % 111) + ha % 1000 / 1000.0) AS t
      FROM al
)
SELECT g, i, k, acct, sc, tag, inc, ip, type, t, h,
       'i-' || tag || '-' || lpad(inc::text, 6, '0') || '-' || j AS asset_id,
       jsonb_build_object('id', 'i-' || tag || '-' || lpad(inc::text, 6, '0') || '-' || j,
                          'name', 'host-' || inc || '-' || j,
                          'ip', '10.' || (inc >> 8 & 255) || '.' || (inc & 255) || '.' || (10 + j),
                          'role', (ARRAY['database', 'application', 'web', 'application', 'web',
                                         'bastion', 'worker'])[1 + (h / 4 + j) % 7]) AS asset,
       'al-' || md5('hist-a-' || g) AS alert_id,
       'ev-' || md5('hist-e-' || i) AS event_id,
       CASE type WHEN 'virus' THEN '/var/tmp/.cache/x' || k
                 WHEN 'webshell' THEN '/var/www/html/up/s' || k || '.php' END AS fpath,
       CASE WHEN type IN ('virus', 'webshell') THEN md5('hist-' || i || '-' || (k % 2)) END AS fmd5,
       CASE WHEN type = 'malicious_process' THEN '/var/tmp/.cache/x' || (k % 4) END AS ppath,
       CASE WHEN type = 'malicious_process' THEN
           CASE WHEN sc = 2 THEN 'www-data' ELSE 'root' END END AS puser,
       CASE WHEN type IN ('malicious_process', 'brute_force', 'network_attack') THEN ip END AS rip,
       CASE WHEN type IN ('brute_force', 'abnormal_logon') THEN ip END AS lip,
       CASE WHEN type IN ('brute_force', 'abnormal_logon') THEN
           (ARRAY['root', 'admin', 'oracle'])[1 + k % 3] END AS luser,
       CASE WHEN ha % 20 = 0 THEN 2 + ha / 20 % 3 ELSE 1 END AS occ,
       CASE WHEN h / 7 % 20 < 14 THEN 'handled' WHEN h / 7 % 20 < 15 THEN 'handling'
            ELSE 'unhandled' END AS evstatus
  FROM kinds;

INSERT INTO cwpp.alerts (alert_id, dedup_key, account_id, name, type, severity, source,
                         input_format, source_alert_id, asset_id, asset, attack_tactic,
                         attack_technique, defense, file, process, remote_ip, logon, details,
                         entities, status, first_seen, last_seen, occurrences, ingested_at,
                         updated_at)
SELECT a.alert_id,
       jsonb_build_array(a.type, a.acct, a.asset_id,
                         COALESCE(a.fpath, a.ppath, a.rip, a.lip),
                         COALESCE(a.fmd5, a.luser, x.name))::text,
       a.acct, x.name, a.type, x.sev, x.src, 'cwpp', 'det-' || a.tag || '-' || a.inc || '-' || a.k,
       a.asset_id, a.asset, x.tactic, x.tech,
       (ARRAY['failed', 'none', 'blocked', 'failed', 'none'])[1 + a.g % 5],
       CASE WHEN a.fpath IS NOT NULL THEN
           jsonb_build_object('path', a.fpath, 'md5', a.fmd5, 'sha256', NULL) END,
       CASE WHEN a.ppath IS NOT NULL THEN
           jsonb_build_object('path', a.ppath, 'user', a.puser, 'cmdline',
                              a.ppath || ' --daemon --pool stratum+tcp://' || a.ip || ':3333 -t '
                              || a.k) END,
       a.rip,
       CASE WHEN a.lip IS NOT NULL THEN jsonb_build_object('ip', a.lip, 'user', a.luser) END,
       jsonb_build_object('incident', a.inc, 'seq', a.k, 'bench_seq', a.g),
       CASE a.type
           WHEN 'malicious_process' THEN jsonb_build_array(x.host, jsonb_build_object(
               'type', 'process', 'value', a.ppath, 'asset_id', a.asset_id), x.ip,
               jsonb_build_object('type', 'host_account', 'value', a.puser, 'asset_id', a.asset_id))
           WHEN 'brute_force' THEN jsonb_build_array(x.host, x.ip, jsonb_build_object(
               'type', 'host_account', 'value', a.luser, 'asset_id', a.asset_id))
           WHEN 'abnormal_logon' THEN jsonb_build_array(x.host, x.ip, jsonb_build_object(
               'type', 'host_account', 'value', a.luser, 'asset_id', a.asset_id))
           WHEN 'network_attack' THEN jsonb_build_array(x.host, x.ip)
           ELSE jsonb_build_array(x.host, jsonb_build_object('type', 'file', 'value', a.fpath,
                                                              'asset_id', a.asset_id)) END,
       CASE WHEN a.evstatus = 'handled' THEN 'handled' ELSE 'unhandled' END,
       a.t, a.t + make_interval(mins => a.occ - 1), a.occ,
       a.t + interval '2 s', a.t + make_interval(mins => a.occ - 1, secs => 2)
  FROM h_alert a,
       LATERAL (SELECT CASE a.type WHEN 'virus' THEN 'Trojan program'
                                   WHEN 'webshell' THEN 'Web shell uploaded'
                                   WHEN 'malicious_process' THEN 'Malicious process'
                                   WHEN 'brute_force' THEN 'SSH brute force'
                                   WHEN 'abnormal_logon' THEN 'Abnormal logon'
                                   ELSE (ARRAY['Port scan from external IP',
                                               'SQL injection attempt',
                                               'Outbound connection to mining pool'])
                                        [1 + a.k / 3 % 3] END AS name,
                       CASE a.type WHEN 'malicious_process' THEN
                                        CASE WHEN a.h % 2 = 0 THEN 'critical' ELSE 'high' END
                                   WHEN 'abnormal_logon' THEN 'medium'
                                   WHEN 'network_attack' THEN
                                        CASE WHEN a.g % 2 = 0 THEN 'low' ELSE 'medium' END
                                   ELSE 'high' END AS sev,
                       CASE a.type WHEN 'virus' THEN 'virus_scan'
                                   WHEN 'webshell' THEN 'webshell_scan'
                                   WHEN 'malicious_process' THEN 'process_monitor'
                                   WHEN 'network_attack' THEN 'network_ids'
                                   ELSE 'logon_monitor' END AS src,
                       CASE a.type WHEN 'virus' THEN 'TA0002' WHEN 'webshell' THEN 'TA0003'
                                   WHEN 'malicious_process' THEN 'TA0002'
                                   WHEN 'brute_force' THEN 'TA0006'
                                   WHEN 'abnormal_logon' THEN 'TA0001'
                                   ELSE 'TA0043' END AS tactic,
                       CASE a.type WHEN 'virus' THEN 'T1204' WHEN 'webshell' THEN 'T1505.003'
                                   WHEN 'malicious_process' THEN 'T1059.004'
                                   WHEN 'brute_force' THEN 'T1110'
                                   WHEN 'abnormal_logon' THEN 'T1078'
                                   ELSE 'T1595' END AS tech,
                       jsonb_build_object('type', 'host', 'value', a.asset_id,
                                          'asset_id', a.asset_id) AS host,
                       jsonb_build_object('type', 'ip', 'value', COALESCE(a.rip, a.lip),
                                          'asset_id', NULL) AS ip) x;

INSERT INTO cwpp.events (event_id, account_id, name, level, status, first_seen, last_seen,
                         alert_count, occurrences, asset_count, stages, sources, urgency,
                         assessment, summary, version, created_at, updated_at,
                         status_changed_at, handled_at)
SELECT event_id, min(acct), CASE min(sc) WHEN 0 THEN 'Trojan program' WHEN 1 THEN 'SSH brute force'
                                         ELSE 'Web shell uploaded' END,
       CASE WHEN min(h) % 2 = 0 AND count(*) > 1 THEN 'critical' ELSE 'high' END, min(evstatus),
       min(t), max(t), count(*), sum(occ), count(DISTINCT asset_id),
       CASE min(sc) WHEN 1 THEN '{initial_access,credential_access,execution}'::text[]
                    ELSE '{execution,persistence}'::text[] END,
       array_agg(DISTINCT CASE type WHEN 'virus' THEN 'virus_scan'
                                    WHEN 'webshell' THEN 'webshell_scan'
                                    WHEN 'malicious_process' THEN 'process_monitor'
                                    WHEN 'network_attack' THEN 'network_ids'
                                    ELSE 'logon_monitor' END),
       (ARRAY['act_now', 'high', 'medium', 'low'])[1 + min(h) / 3 % 4],
       jsonb_build_object('reasons', jsonb_build_array(jsonb_build_object(
           'code', 'alerts_high', 'text', count(*) || ' associated alerts')),
           'recommendations', jsonb_build_array(jsonb_build_object(
               'action', 'block_ip', 'entity_type', 'ip', 'entity_value', min(ip),
               'reason', 'attacker IP of this event')),
           'assessed_at', (extract(epoch FROM max(t)) * 1000)::bigint),
       json_build_object('occurrences', sum(occ),
                         'first_ms', (extract(epoch FROM min(t)) * 1000)::bigint,
                         'last_ms', (extract(epoch FROM max(t)) * 1000)::bigint,
                         'alerts', count(*), 'non_pd', count(*), 'sev', 1,
                         'name', 'history', 'ips', json_build_array(min(ip)),
                         'types', array_agg(DISTINCT type),
                         'times', (array_agg((extract(epoch FROM t) * 1000)::bigint
                                             ORDER BY t))[1:10],
                         'notified', 'high'),
       1 + count(*) / 3, min(t) + interval '3 s', max(t) + interval '3 s',
       CASE WHEN min(evstatus) <> 'unhandled' THEN max(t) + interval '2 h' END,
       CASE WHEN min(evstatus) = 'handled' THEN max(t) + interval '2 h' END
  FROM h_alert GROUP BY i, event_id ORDER BY i;

INSERT INTO cwpp.event_alerts (event_id, alert_id, reason, first_seen, last_seen, occurrences,
                               joined_at, seq)
SELECT event_id, alert_id,
       CASE WHEN k = 0 THEN 'opens a new event: no open event of account ' || acct
                            || ' shares a file hash, process, attacker IP or asset with it '
                            || 'within the window'
            ELSE 'same asset ' || asset_id || ' as alert al-' || md5('hist-a-' || (g - k)) END,
       t, t + make_interval(mins => occ - 1), occ, t + interval '3 s', occ
  FROM h_alert;

INSERT INTO cwpp.entity_alerts (account_id, entity_type, value, asset_id, event_id, alert_id,
                                first_seen, last_seen)
SELECT a.acct, en.ty, en.v, a.asset_id, a.event_id, a.alert_id, a.t,
       a.t + make_interval(mins => a.occ - 1)
  FROM h_alert a,
       LATERAL (VALUES ('host', a.asset_id), ('file', a.fpath), ('process', a.ppath),
                       ('ip', COALESCE(a.rip, a.lip)),
                       ('host_account', COALESCE(a.luser, a.puser))) en(ty, v)
 WHERE en.v IS NOT NULL;

INSERT INTO cwpp.event_edges (event_id, src_type, src, relation, dst_type, dst, alert_id,
                              first_seen, last_seen, alerts)
SELECT a.event_id, ed.st, ed.s, ed.rel, ed.dt, ed.d, min(a.alert_id), min(a.t), max(a.t),
       count(*)
  FROM h_alert a,
       LATERAL (VALUES ('host', a.asset_id, 'has_file', 'file', a.fpath),
                       ('host', a.asset_id, 'ran', 'process', a.ppath),
                       ('host', a.asset_id, 'connected_to', 'ip',
                        CASE WHEN a.type = 'malicious_process' THEN a.rip END),
                       ('process', a.ppath, 'ran_as', 'host_account', a.puser),
                       ('ip', a.lip, 'logged_on_to', 'host', a.asset_id),
                       ('host_account', a.luser, 'logged_on_to', 'host', a.asset_id),
                       ('ip', a.lip, 'used_account', 'host_account', a.luser),
                       ('ip', CASE WHEN a.type = 'network_attack' THEN a.rip END, 'attacked',
                        'host', a.asset_id)) ed(st, s, rel, dt, d)
 WHERE ed.s IS NOT NULL AND ed.d IS NOT NULL
 GROUP BY a.i, a.event_id, ed.st, ed.s, ed.rel, ed.dt, ed.d ORDER BY a.i;

INSERT INTO cwpp.event_keys (key, account_id, event_id, alert_id, updated_at)
SELECT DISTINCT ON (ky.key) ky.key, a.acct, a.event_id, a.alert_id, a.t + interval '3 s'
  FROM h_alert a,
       LATERAL (VALUES (0, '', a.fmd5), (1, a.asset_id, a.ppath),
                       (2, '', CASE WHEN a.i + :P >= :E THEN COALESCE(a.rip, a.lip) END),
                       (3, '', a.asset_id)) kv(kind, asset, v),
       LATERAL (SELECT a.acct || chr(31) || kv.kind || chr(31) || kv.asset || chr(31) || kv.v
                    AS key) ky
 WHERE kv.v IS NOT NULL
 ORDER BY ky.key, a.g;

DROP TABLE h_alert;
