/*
 * sr_module.h - writing siprouter modules in C (module ABI 1.0).
 *
 * A module written the way Kamailio/OpenSER modules are:
 *
 *   #include "sr_module.h"
 *   MODULE_VERSION
 *   static cmd_export_t cmds[] = { {"my_func", (cmd_function)my_func, 1, 0, 0, REQUEST_ROUTE}, {0} };
 *   struct module_exports exports = { "mymod", cmds, params, stats,
 *                                     mod_init, 0, mod_destroy, child_init };
 *
 * built with `cc -shared -fPIC -I<siprouter>/include/siprouter -o mymod.so mymod.c`
 * and loaded with `loadmodule "/path/mymod.so"` (or `mpath` + `loadmodule "mymod"`).
 * The guide is docs/modules/writing-a-module.md.
 *
 * How the module reaches the server: it links against nothing of siprouter.
 * MODULE_VERSION defines two globals: `sr_module_stamp` (the version stamp
 * the loader checks before calling anything) and `sr_core`, a pointer to the
 * server's services table, which the loader sets before mod_init. Every
 * function below (LM_*, update_stat, sr_msg_*, ...) is a static inline
 * wrapper calling through `sr_core`.
 *
 * Stability: within ABI major 1, structs and the services table only grow at
 * the end. A module built for another major, or for a newer minor than the
 * running server, is refused at load time with a message naming both.
 *
 * Threads: siprouter runs workers as threads of one process, not as forked
 * processes. Script functions are called concurrently from several workers;
 * module globals are shared between them (Kamailio's pkg memory does not
 * exist here: use locks or atomics for data changed after child_init).
 */
#ifndef SIPROUTER_SR_MODULE_H
#define SIPROUTER_SR_MODULE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions --------------------------------------------------------- */

/* The module ABI this header describes. Do not define these yourself. */
#ifndef SR_ABI_MAJOR
#define SR_ABI_MAJOR 1
#endif
#ifndef SR_ABI_MINOR
#define SR_ABI_MINOR 0
#endif
/* The server version this header comes from (diagnostics only). */
#ifndef SR_CORE_VERSION
#define SR_CORE_VERSION "siprouter 0.1.0"
#endif
/* "SRMODABI" as a little-endian 64-bit number. */
#define SR_MODULE_MAGIC 0x494241444F4D5253ULL
#define SR_LANG_C 1

#ifdef __VERSION__
#define SR_BUILD_INFO "c; " __VERSION__
#else
#define SR_BUILD_INFO "c"
#endif

/* ---- basic types -------------------------------------------------------- */

/* A string with a length, not NUL-terminated (Kamailio's str). */
typedef struct _str {
	char *s;
	int len;
} str;

/* The message a function is called with. Opaque: read and change it with the
 * sr_msg_* functions below. Valid only during the call it is passed to. */
struct sip_msg;

/* A statistic handle (set by the loader through stat_export_t). */
typedef struct sr_stat_var stat_var;

/* ---- route types (where a function may be called), Kamailio's values ---- */

#define REQUEST_ROUTE        (1u << 0)  /* request_route and route[] */
#define FAILURE_ROUTE        (1u << 1)  /* failure_route[] */
#define TM_ONREPLY_ROUTE     (1u << 2)  /* onreply_route[] armed by t_on_reply */
#define BRANCH_ROUTE         (1u << 3)  /* branch_route[] */
#define ONSEND_ROUTE         (1u << 4)  /* onsend_route */
#define ERROR_ROUTE          (1u << 5)  /* error_route */
#define LOCAL_ROUTE          (1u << 6)  /* local requests of tm */
#define CORE_ONREPLY_ROUTE   (1u << 7)  /* reply_route */
#define BRANCH_FAILURE_ROUTE (1u << 8)  /* event_route[tm:branch-failure] */
#define ONREPLY_ROUTE        (TM_ONREPLY_ROUTE | CORE_ONREPLY_ROUTE)
#define ONEVENT_ROUTE        (1u << 9)
#define EVENT_ROUTE          (REQUEST_ROUTE | ONEVENT_ROUTE)
#define ANY_ROUTE            (0xFFFFFFFFu)

/* ---- process ranks passed to child_init (siprouter runs them as threads) - */

#define PROC_INIT          -127 /* main thread, before any worker starts */
#define PROC_MAIN             0 /* main thread, after the workers started */
#define PROC_TIMER           -1 /* the timer thread */
#define PROC_RPC             -2 /* the RPC thread */
#define PROC_FIFO      PROC_RPC
#define PROC_TCP_MAIN        -4 /* the TCP accept thread */
#define PROC_UNIXSOCK        -5
#define PROC_ATTENDANT      -10
#define PROC_POSTCHILDINIT -126
#define PROC_NOCHLDINIT    -128
#define PROC_SIPINIT          1 /* the first SIP worker: one-time work here */
#define PROC_SIPROUTER        2 /* the other SIP workers are 2, 3, ... */

/* ---- log levels (debug=) ------------------------------------------------ */

#define L_ALERT  -5
#define L_BUG    -4
#define L_CRIT2  -3
#define L_CRIT   -2
#define L_ERR    -1
#define L_WARN    0
#define L_NOTICE  1
#define L_INFO    2
#define L_DBG     3

/* ---- protocols (sr_msg_get_rcv) ----------------------------------------- */

#define PROTO_UDP  1
#define PROTO_TCP  2
#define PROTO_TLS  3
#define PROTO_SCTP 4
#define PROTO_WS   5
#define PROTO_WSS  6

/* ---- what a module exports ---------------------------------------------- */

/* A script function: the message and its parameters, each either the
 * parameter text (no fixup) or what the fixup made of it. Returns >0 for
 * true, <0 for false, 0 to stop the script (like exit). */
typedef int (*cmd_function)(struct sip_msg *, char *, char *);
/* Functions with 3 to 6 parameters have these types; store them in
 * cmd_export_t cast to cmd_function (the server calls them with param_no
 * parameters). */
typedef int (*cmd_function3)(struct sip_msg *, char *, char *, char *);
typedef int (*cmd_function4)(struct sip_msg *, char *, char *, char *, char *);
typedef int (*cmd_function5)(struct sip_msg *, char *, char *, char *, char *, char *);
typedef int (*cmd_function6)(struct sip_msg *, char *, char *, char *, char *, char *, char *);
/* Runs once per parameter at load time, after every mod_init, with
 * param_no counting from 1; *param holds the parameter text (owned by the
 * server: do not free it) and may be replaced by a prepared value. Return 0,
 * or <0 to fail the config check. */
typedef int (*fixup_function)(void **param, int param_no);
/* Frees what fixup_function made, when the routes are dropped (reload,
 * shutdown). */
typedef int (*free_fixup_function)(void **param, int param_no);
/* Sees every received reply that reply_route did not drop. Return 0 when
 * the module consumed the reply (it is then not forwarded statelessly). */
typedef int (*response_function)(struct sip_msg *);
/* mod_init: once, in load order, before the workers start. Non-zero stops
 * the server, with the module named. */
typedef int (*init_function)(void);
/* child_init: once per rank (see PROC_*), in the thread of that rank.
 * Negative stops the server. */
typedef int (*child_init_function)(int rank);
/* destroy: once at shutdown, in reverse load order, after the workers
 * stopped. */
typedef void (*destroy_function)(void);

typedef unsigned int modparam_t;
/* A setter for PARAM_USE_FUNC parameters, called for each modparam: val is
 * a char* (PARAM_STRING), a str* (PARAM_STR) or the int itself cast to a
 * pointer (PARAM_INT). Return 0, or <0 to fail the config check. */
typedef int (*param_func_t)(modparam_t type, void *val);

/* cmd_export_t. The default is Kamailio 5's layout
 *   { name, function, param_no, fixup, free_fixup, flags }.
 * Define SR_MODULE_SEED_CMDS before including this header for the older
 * (OpenSER 1.x, the seed's) layout without free_fixup
 *   { name, function, param_no, fixup, flags }.
 * The stamp records which one the module uses. param_no is 0 to 6 (a
 * negative param_no, Kamailio's NO_SCRIPT, hides the entry from scripts);
 * a name may appear with several param_no (overloading). End with {0}. */
typedef struct cmd_export_ {
	char *name;
	cmd_function function;
	int param_no;
	fixup_function fixup;
#ifndef SR_MODULE_SEED_CMDS
	free_fixup_function free_fixup;
#endif
	unsigned int flags;
} cmd_export_t;

#define PARAM_STRING   (1U << 0) /* param_pointer is a char**  */
#define PARAM_INT      (1U << 1) /* param_pointer is an int*   */
#define PARAM_STR      (1U << 2) /* param_pointer is a str*    */
#define PARAM_USE_FUNC (1U << 31) /* param_pointer is a param_func_t */

/* A parameter set with modparam("mymod", "name", value). End with {0,0,0}.
 * Strings given to the module are never freed. */
typedef struct param_export_ {
	char *name;
	modparam_t type;
	void *param_pointer;
} param_export_t;

#define STAT_NO_RESET 1 /* not cleared by stats.reset_statistics */
#define STAT_SHM_NAME 4 /* accepted, no effect */
#define STAT_IS_FUNC  8 /* stat_pointer is a `long (*)(void)` read on demand */

/* A statistic, read as `mymod:name = value` (RPC stats.get_statistics).
 * The loader stores a handle in *stat_pointer. End with {0,0,0}. */
typedef struct stat_export_ {
	char *name;
	int flags;
	stat_var **stat_pointer;
} stat_export_t;

/* The module, in the seed's field order. Define it as a global named
 * `exports`. Any pointer may be 0. */
struct module_exports {
	char *name;                       /* module name (modparam, statistics group) */
	cmd_export_t *cmds;               /* script functions */
	param_export_t *params;           /* parameters */
	stat_export_t *stats;             /* statistics */
	init_function init_f;             /* mod_init */
	response_function response_f;     /* reply hook */
	destroy_function destroy_f;       /* destroy */
	child_init_function init_child_f; /* child_init */
};

/* ---- the version stamp and the services table --------------------------- */

struct sr_module_stamp {
	uint64_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
	const char *core_version;
	const char *build;
	uint8_t ptr_size;
	uint8_t int_size;
	uint8_t long_size;
	uint8_t lang;
	uint32_t flags;
	uint32_t cmd_size;
	uint32_t exports_size;
};

/* What the server offers. Message functions return 0 (or a count) on
 * success and <0 on failure; str results stay valid until the module's
 * function returns; C strings passed in are NUL-terminated. */
struct sr_core_api {
	uint32_t size;
	uint16_t abi_major;
	uint16_t abi_minor;
	const char *version;
	int (*log_level)(void);
	void (*log)(int level, const char *module, const char *text);
	void (*set_error)(const char *text);
	int (*msg_is_request)(struct sip_msg *);
	int (*msg_get_method)(struct sip_msg *, str *out);
	int (*msg_get_ruri)(struct sip_msg *, str *out);
	int (*msg_get_dst_uri)(struct sip_msg *, str *out);
	int (*msg_get_header)(struct sip_msg *, const char *name, int index, str *out);
	int (*msg_get_body)(struct sip_msg *, str *out);
	int (*msg_get_source)(struct sip_msg *, str *ip, int *port);
	int (*msg_get_status)(struct sip_msg *);
	int (*msg_get_buf)(struct sip_msg *, str *out);
	int (*msg_get_rcv)(struct sip_msg *, str *src, str *dst, int *proto);
	int (*msg_get_flags)(struct sip_msg *, unsigned int *out);
	int (*pv_get)(struct sip_msg *, const char *name, str *out);
	int (*msg_append_header)(struct sip_msg *, const char *name, const char *value);
	int (*msg_remove_header)(struct sip_msg *, const char *name);
	int (*msg_set_ruri)(struct sip_msg *, const char *uri);
	int (*msg_set_dst_uri)(struct sip_msg *, const char *uri);
	int (*msg_set_flags)(struct sip_msg *, unsigned int flags);
	int (*msg_edit)(struct sip_msg *, unsigned int start, unsigned int end, const char *text, int len);
	int (*msg_set_body)(struct sip_msg *, const char *body, int len, const char *content_type);
	int (*append_to_reply)(struct sip_msg *, const char *text);
	int (*pv_set_str)(struct sip_msg *, const char *name, const char *value);
	int (*send_reply)(struct sip_msg *, int code, const char *reason);
	void (*stat_update)(stat_var *, long n);
	long (*stat_get)(stat_var *);
	void (*stat_reset)(stat_var *);
	int (*shutting_down)(void);
};

#define SR_EXPORT __attribute__((visibility("default")))

extern const struct sr_module_stamp sr_module_stamp;
extern const struct sr_core_api *sr_core;
extern struct module_exports exports;

/* Put once in the module, at file scope: defines the version stamp and the
 * services pointer. */
#define MODULE_VERSION \
	SR_EXPORT const struct sr_module_stamp sr_module_stamp = { \
		SR_MODULE_MAGIC, SR_ABI_MAJOR, SR_ABI_MINOR, \
		(uint32_t)sizeof(struct sr_module_stamp), SR_CORE_VERSION, SR_BUILD_INFO, \
		(uint8_t)sizeof(void *), (uint8_t)sizeof(int), (uint8_t)sizeof(long), SR_LANG_C, 0, \
		(uint32_t)sizeof(cmd_export_t), (uint32_t)sizeof(struct module_exports)}; \
	SR_EXPORT const struct sr_core_api *sr_core = 0;

/* ---- logging ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static inline void sr_log_printf(int level, const char *func, const char *fmt, ...)
{
	char buf[1024];
	int n;
	va_list ap;
	if (sr_core && level > sr_core->log_level())
		return;
	n = snprintf(buf, sizeof(buf), "%s(): ", func);
	if (n < 0 || n >= (int)sizeof(buf))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (sr_core)
		sr_core->log(level, exports.name, buf);
	else
		fprintf(stderr, "%s: %s\n", exports.name, buf);
}

/* Kamailio's logging macros: printf-style, written with the module's name
 * when the level is enabled (debug=). */
#define LM_ALERT(fmt, ...)  sr_log_printf(L_ALERT, __func__, fmt, ##__VA_ARGS__)
#define LM_CRIT(fmt, ...)   sr_log_printf(L_CRIT, __func__, fmt, ##__VA_ARGS__)
#define LM_ERR(fmt, ...)    sr_log_printf(L_ERR, __func__, fmt, ##__VA_ARGS__)
#define LM_WARN(fmt, ...)   sr_log_printf(L_WARN, __func__, fmt, ##__VA_ARGS__)
#define LM_NOTICE(fmt, ...) sr_log_printf(L_NOTICE, __func__, fmt, ##__VA_ARGS__)
#define LM_INFO(fmt, ...)   sr_log_printf(L_INFO, __func__, fmt, ##__VA_ARGS__)
#define LM_DBG(fmt, ...)    sr_log_printf(L_DBG, __func__, fmt, ##__VA_ARGS__)

/* The reason mod_init, child_init, a fixup or a param_func_t failed, shown
 * in the server's startup error. */
static inline void sr_set_error(const char *text) { if (sr_core) sr_core->set_error(text); }

/* ---- statistics --------------------------------------------------------- */

static inline void update_stat(stat_var *v, long n) { if (sr_core) sr_core->stat_update(v, n); }
static inline long get_stat_val(stat_var *v) { return sr_core ? sr_core->stat_get(v) : 0; }
static inline void reset_stat(stat_var *v) { if (sr_core) sr_core->stat_reset(v); }

/* ---- reading the message ------------------------------------------------ */

/* 1 for a request, 0 for a reply. */
static inline int sr_msg_is_request(struct sip_msg *m) { return sr_core->msg_is_request(m); }
/* The method (of a reply: its CSeq method). */
static inline int sr_msg_get_method(struct sip_msg *m, str *out) { return sr_core->msg_get_method(m, out); }
/* The current Request-URI ($ru, after any rewrite). */
static inline int sr_msg_get_ruri(struct sip_msg *m, str *out) { return sr_core->msg_get_ruri(m, out); }
/* The destination URI ($du); empty when not set. */
static inline int sr_msg_get_dst_uri(struct sip_msg *m, str *out) { return sr_core->msg_get_dst_uri(m, out); }
/* The value of the index-th (from 0) header called name; -1 when missing. */
static inline int sr_msg_get_header(struct sip_msg *m, const char *name, int index, str *out)
{ return sr_core->msg_get_header(m, name, index, out); }
/* The body as received. */
static inline int sr_msg_get_body(struct sip_msg *m, str *out) { return sr_core->msg_get_body(m, out); }
/* The source IP address (text) and port. */
static inline int sr_msg_get_source(struct sip_msg *m, str *ip, int *port) { return sr_core->msg_get_source(m, ip, port); }
/* The status code of a reply (0 for a request). */
static inline int sr_msg_get_status(struct sip_msg *m) { return sr_core->msg_get_status(m); }
/* The received bytes. */
static inline int sr_msg_get_buf(struct sip_msg *m, str *out) { return sr_core->msg_get_buf(m, out); }
/* Source and local address as "ip:port", and the PROTO_* protocol. */
static inline int sr_msg_get_rcv(struct sip_msg *m, str *src, str *dst, int *proto)
{ return sr_core->msg_get_rcv(m, src, dst, proto); }
/* The message flags ($mf). */
static inline int sr_msg_get_flags(struct sip_msg *m, unsigned int *out) { return sr_core->msg_get_flags(m, out); }
/* Any pseudo-variable as text: "$rU", "$fu", "$hdr(X-Foo)", "$var(x)";
 * -1 when it has no value. */
static inline int sr_msg_get_pv(struct sip_msg *m, const char *name, str *out) { return sr_core->pv_get(m, name, out); }

/* ---- changing the message ----------------------------------------------- */

/* Appends "name: value" after the last header. */
static inline int sr_msg_append_header(struct sip_msg *m, const char *name, const char *value)
{ return sr_core->msg_append_header(m, name, value); }
/* Removes every header called name; returns how many, -1 for none. */
static inline int sr_msg_remove_header(struct sip_msg *m, const char *name) { return sr_core->msg_remove_header(m, name); }
/* Sets the Request-URI ($ru). */
static inline int sr_msg_set_ruri(struct sip_msg *m, const char *uri) { return sr_core->msg_set_ruri(m, uri); }
/* Sets the destination URI ($du); "" clears it. */
static inline int sr_msg_set_dst_uri(struct sip_msg *m, const char *uri) { return sr_core->msg_set_dst_uri(m, uri); }
/* Replaces the message flags. */
static inline int sr_msg_set_flags(struct sip_msg *m, unsigned int flags) { return sr_core->msg_set_flags(m, flags); }
/* Replaces received bytes start..end with len bytes of text (an insertion
 * when start == end); applied when the message is sent. */
static inline int sr_msg_edit(struct sip_msg *m, unsigned int start, unsigned int end, const char *text, int len)
{ return sr_core->msg_edit(m, start, end, text, len); }
/* Replaces the body (Content-Length is fixed on sending); content_type may be 0. */
static inline int sr_msg_set_body(struct sip_msg *m, const char *body, int len, const char *content_type)
{ return sr_core->msg_set_body(m, body, len, content_type); }
/* Adds header lines ("X-A: 1\r\n") to the next locally generated reply. */
static inline int sr_msg_append_to_reply(struct sip_msg *m, const char *text) { return sr_core->append_to_reply(m, text); }
/* Sets a pseudo-variable ("$var(x)", "$avp(y)") to a string. */
static inline int sr_msg_set_pv(struct sip_msg *m, const char *name, const char *value)
{ return sr_core->pv_set_str(m, name, value); }

/* ---- replying ----------------------------------------------------------- */

/* Sends a stateless reply to the request (sl_send_reply); 1 on success. On a
   UDP worker the datagram may be held for the end of the batch
   (udp_hold_sends): a refusal by the kernel then is logged, not returned. */
static inline int sr_send_reply(struct sip_msg *m, int code, const char *reason) { return sr_core->send_reply(m, code, reason); }

/* 1 once the server is shutting down. */
static inline int sr_shutting_down(void) { return sr_core ? sr_core->shutting_down() : 0; }

#ifdef __cplusplus
}
#endif

#endif /* SIPROUTER_SR_MODULE_H */
