/*
 * mymod: the seed's template module, completed (C version).
 *
 * Script functions:
 *   mymod_check(prefix)       1 if the Request-URI user starts with prefix,
 *                             -1 otherwise; counted in the statistic
 *                             mymod:checks. request and failure routes only.
 *   mymod_greet(header)       appends "header: <greeting>" to the request
 *                             (seen by the next hop after forwarding).
 *   mymod_reply(code, reason) replies statelessly with an X-Greeting header,
 *                             then stops the script (returns 0).
 * Parameters:
 *   greeting (string)         modparam("mymod", "greeting", "hi"); default
 *                             "hello"; an empty greeting fails mod_init.
 * Statistics:
 *   mymod:checks              calls of mymod_check
 *   mymod:ranks               child_init calls seen (computed on read)
 *
 * Build: make (see the Makefile); load: loadmodule "/path/mymod.so".
 */
#include "sr_module.h"

#include <stdlib.h>

MODULE_VERSION

static int mod_init(void);
static void mod_destroy(void);
static int child_init(int rank);
static long ranks_seen(void);

static int mymod_check(struct sip_msg *msg, char *prefix, char *unused);
static int mymod_greet(struct sip_msg *msg, char *header, char *unused);
static int mymod_reply(struct sip_msg *msg, char *code, char *reason);
static int fixup_prefix(void **param, int param_no);
static int free_fixup_prefix(void **param, int param_no);
static int fixup_code(void **param, int param_no);

/* Parameters: a string the server sets before mod_init. */
static char *greeting = "hello";

/* Statistics: handles the loader fills in. */
static stat_var *checks_stat;

/* Workers are threads: count ranks atomically. */
static long child_inits;

/*
 * Script commands we export: name, function, parameter count, fixup,
 * free_fixup, route types.
 */
static cmd_export_t cmds[] = {
	{"mymod_check", (cmd_function)mymod_check, 1, fixup_prefix, free_fixup_prefix,
		REQUEST_ROUTE | FAILURE_ROUTE},
	{"mymod_greet", (cmd_function)mymod_greet, 1, 0, 0, REQUEST_ROUTE | BRANCH_ROUTE},
	{"mymod_reply", (cmd_function)mymod_reply, 2, fixup_code, 0, REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

/*
 * Script parameters
 */
static param_export_t mod_params[] = {
	{"greeting", PARAM_STRING, &greeting},
	{0, 0, 0}
};

/*
 * Export the statistics we have
 */
static stat_export_t mod_stats[] = {
	{"checks", 0, &checks_stat},
	{"ranks", STAT_IS_FUNC, (stat_var **)ranks_seen},
	{0, 0, 0}
};

struct module_exports exports = {
	"mymod",     /* module's name */
	cmds,        /* exported functions */
	mod_params,  /* param exports */
	mod_stats,   /* exported statistics */
	mod_init,    /* module initialization function */
	0,           /* reply processing function: not needed here */
	mod_destroy, /* destroy function */
	child_init   /* per-child init function */
};

/*
 * Runs once, after the config is read and every modparam applied, before
 * the workers start. @return 0 to continue, anything else stops the server.
 */
static int mod_init(void)
{
	if (greeting == 0 || greeting[0] == '\0') {
		sr_set_error("the greeting parameter must not be empty");
		return -1;
	}
	LM_INFO("mymod ready, greeting '%s'\n", greeting);
	return 0;
}

/*
 * Called once when the server shuts down, after the workers stopped.
 */
static void mod_destroy(void)
{
	LM_INFO("mymod done after %ld child_init calls\n", child_inits);
}

/*
 * Runs in each worker (rank 1..n, PROC_SIPINIT first), and for the special
 * ranks (PROC_INIT, PROC_MAIN, PROC_TIMER, PROC_TCP_MAIN) in their thread.
 * A negative value stops the server.
 */
static int child_init(int rank)
{
	__atomic_fetch_add(&child_inits, 1, __ATOMIC_RELAXED);
	if (rank == PROC_SIPINIT)
		LM_DBG("first SIP worker: one-time work goes here\n");
	return 0;
}

static long ranks_seen(void)
{
	return __atomic_load_n(&child_inits, __ATOMIC_RELAXED);
}

/* The prefix is copied into a str once, at load time. */
static int fixup_prefix(void **param, int param_no)
{
	str *s;
	if (param_no != 1)
		return 0;
	s = malloc(sizeof(str));
	if (s == 0)
		return -1;
	s->len = (int)strlen((char *)*param);
	s->s = strdup((char *)*param);
	if (s->s == 0) {
		free(s);
		return -1;
	}
	*param = s;
	return 0;
}

static int free_fixup_prefix(void **param, int param_no)
{
	str *s = *param;
	if (param_no == 1 && s) {
		free(s->s);
		free(s);
		*param = 0;
	}
	return 0;
}

/* The reply code must be a number between 100 and 699. */
static int fixup_code(void **param, int param_no)
{
	long code;
	char *end;
	if (param_no != 1)
		return 0;
	code = strtol((char *)*param, &end, 10);
	if (*end != '\0' || code < 100 || code > 699) {
		sr_set_error("the reply code must be a number from 100 to 699");
		return -1;
	}
	*param = (void *)code;
	return 0;
}

static int mymod_check(struct sip_msg *msg, char *prefix, char *unused)
{
	str *p = (str *)prefix;
	str user;
	(void)unused;
	update_stat(checks_stat, 1);
	if (sr_msg_get_pv(msg, "$rU", &user) < 0)
		return -1;
	if (user.len >= p->len && memcmp(user.s, p->s, (size_t)p->len) == 0)
		return 1;
	return -1;
}

static int mymod_greet(struct sip_msg *msg, char *header, char *unused)
{
	(void)unused;
	return sr_msg_append_header(msg, header, greeting) == 0 ? 1 : -1;
}

static int mymod_reply(struct sip_msg *msg, char *code, char *reason)
{
	char line[256];
	snprintf(line, sizeof(line), "X-Greeting: %s\r\n", greeting);
	sr_msg_append_to_reply(msg, line);
	if (sr_send_reply(msg, (int)(long)code, reason) < 0)
		return -1;
	return 0;
}
