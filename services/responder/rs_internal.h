/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the responder's files: responder.c (the batch, snapshots),
 * commands.c (analysts' commands on events: the dispatch table), admin.c (users, member
 * accounts and playbooks: admins' commands), tasks.c (policies, tasks, actions, results, timers),
 * playbooks.c (loading playbooks). */
#ifndef CWPP_RS_INTERNAL_H
#define CWPP_RS_INTERNAL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

#include "cwpp_avro.h"
#include "cwpp_command.h"
#include "cwpp_http.h"
#include "cwpp_kafka.h"
#include "cwpp_pg.h"
#include "cwpp_service.h"
#include "cwpp_sign.h"
#include "responder.h"

#define RS_MAX_TOUCHED 4096

typedef struct rs {
    const rs_conf_t  *conf;
    cwpp_pg_t        *pg;
    cwpp_avro_type_t *t_action, *t_aresult, *t_event, *t_rejected;
    avro_value_t      v_action, v_aresult, v_event, v_rejected;
    int               nvalues;      /* how many of the four values exist (destroy) */
    cwpp_commander_t *cmd;          /* the command protocol (commands.c) */
    size_t            cmd_touched;  /* ntouched before the current command */
    cwpp_buf_t        buf;
    cwpp_sign_key_t  *signer;       /* responder.signing.key.file: signs every Action */
    char              cmd_topic[256];
    int               resent;       /* running tasks' actions sent again after start */
    char            **touched;      /* events changed in this batch: snapshots */
    size_t            ntouched;
    atomic_int        db_ok;

    cwpp_metrics_t   *metrics;
    cwpp_metric_t    *m_dead, *m_db_errors, *m_actions, *m_results, *m_stale_results;
    cwpp_metric_t    *m_retries, *m_timeouts, *m_expired, *m_snapshots, *m_db_seconds;
    cwpp_metric_t    *m_playbooks_invalid, *m_rollbacks_failed;
} rs_t;

/* responder.c */
int  rs_touch(rs_t *r, const char *event_id, char *errstr, size_t errstr_size);
int  rs_dead_letter(rs_t *r, const rd_kafka_message_t *m, const char *code, const char *reason,
                    cwpp_outbox_t *out, char *errstr, size_t errstr_size);

/* commands.c: the commander of the responder's commands for r (r->pg, r->conf,
 * r->metrics set); NULL with errstr. */
cwpp_commander_t *rs_commander_new(rs_t *r, char *errstr, size_t errstr_size);
/* commands.c: one command record, in the batch's transaction. 0 or CWPP_ETRANSIENT. */
int  rs_apply_command(rs_t *r, const rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                      size_t errstr_size);
/* Sets an event's status (locked by the caller) with its cascade and log entries.
 * via: "status", "policy" or "playbook". */
int  rs_set_status(rs_t *r, const char *event_id, const char *from, const char *to,
                   const char *actor, const char *command_id, const char *remark,
                   const char *via, int64_t *alerts_handled, char *errstr, size_t errstr_size);

/* commands.c: every text of c's payload within its limit (cwpp_alert_limits.h), checked
 * first by every handler, before anything is read or written; else refused in rp naming
 * the field and the limit. 1 fits. */
int  rs_texts_fit(const cwpp_command_t *c, cwpp_command_reply_t *rp);

/* admin.c: the handlers (cwpp_command_fn) of users.*, accounts.add_member, playbooks.* */
int  rs_cmd_users_add(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_users_grant(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                        cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_users_disable(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                          cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_users_role(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                       cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_accounts_add_member(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                                cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_accounts_perimeter(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                               cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_playbooks_add(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                          cwpp_outbox_t *out, char *errstr, size_t errstr_size);
int  rs_cmd_playbooks_delete(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                             cwpp_outbox_t *out, char *errstr, size_t errstr_size);

/* settings.c: notifications.set {account_id, enabled, min_level}: an account's
 * notification setting (admins, or users holding the account). */
int  rs_cmd_notifications_set(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                              cwpp_outbox_t *out, char *errstr, size_t errstr_size);

/* tasks.c */
int  rs_apply_result(rs_t *r, const rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size);
int  rs_tick(rs_t *r, cwpp_outbox_t *out, char *errstr, size_t errstr_size);
/* Creates the policy (or playbook run) and its first task, sends the action. steps is
 * [{"action", "params", "timeout_s"}]; returns 0, CWPP_EDATA or a database error. */
int  rs_start_policy(rs_t *r, const char *response_id, int index, const char *event_id,
                     const char *account, const char *dest, const char *kind,
                     const char *name, const char *etype, const char *evalue,
                     const char *asset, json_t *steps, const char *target_status,
                     int64_t validity_s, const char *actor, const char *remark,
                     json_t *out_policies, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size);
/* Sends again the actions of the running tasks of these policies (a redelivered
 * command). */
int  rs_resend_for_response(rs_t *r, const char *response_id, cwpp_outbox_t *out,
                            char *errstr, size_t errstr_size);

/* tasks.c: policies.cancel {policy_id, remark}: ends the lease now (the rollbacks are sent
 * as when it runs out); permission on the policy's (its event's) account. */
int  rs_cmd_policies_cancel(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                            cwpp_outbox_t *out, char *errstr, size_t errstr_size);
/* Sends again the running rollbacks of a policy (a redelivered policies.cancel). */
int  rs_resend_rollbacks(rs_t *r, const char *policy_id, cwpp_outbox_t *out, char *errstr,
                         size_t errstr_size);

/* playbooks.c: writes the built-in playbooks and those of responder.playbooks.dir. */
int  rs_load_playbooks(rs_t *r, char *errstr, size_t errstr_size);

#endif /* CWPP_RS_INTERNAL_H */
