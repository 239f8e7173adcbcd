/*-------------------------------------------------------------------------
 *
 * origin.c
 *	  Proving which database a session's writes come from.
 *
 * A write that one database sends into another (through a shim, or an
 * action statement wrapped in splitdb.reference_relay()) is enforced by the
 * database that issued it, so the receiving end must skip the references it
 * concerns (refcheck.c, origin_skips()).  Skipping turns a check off, so the
 * receiving end skips only for a session that proved, with a secret, that
 * splitdb in the issuing database opened it; nothing a client can send (a
 * setting, an option, a function call) does.
 *
 * The secret: every pair of databases that hold the two ends of a reference
 * (the source and a sibling, two siblings) shares 32 random bytes, kept on
 * both sides in splitdb.origin_key, which only its owner (the extension's)
 * can read.  It is made when the references are installed: in the database
 * that receives it first (splitdb.origin_key_make(), which returns it as a
 * query result) and stored in the other one through SPI or COPY ... FROM
 * STDIN, so that it is never statement text or a bind parameter, which
 * log_statement would show.
 *
 * The proof, once per remote session: the issuing database asks for a
 * fresh nonce (splitdb.origin_challenge()), computes HMAC-SHA256 of the
 * nonce and its own location with the pair's secret, and sends location and
 * MAC (splitdb.origin_prove()).  The receiving session checks them against
 * its copy of the secret and from then on counts as coming from that
 * location; a nonce serves one attempt, and any attempt first forgets what
 * the session had proved.
 *
 * What the proof covers: the issuing session proves a postgres_fdw
 * connection only before a write that splitdb itself enforces, a write
 * through a shim (a foreign table with splitdb's shim trigger) and the
 * action statements of refcheck.c.  A write or a read through any other
 * foreign table of the server withdraws the proof of its connection first
 * (splitdb.origin_withdraw()), and no connection to that server is proved
 * again until the transaction ends: a statement that writes through such a
 * table may run a shim write in a nested statement, and the rows it sends
 * afterwards must still be checked by the receiving end; and a read runs
 * whatever the remote relation runs (a view's volatile functions), which
 * can write there.
 *
 * Actions: a proved session may also ask the receiving end to apply a
 * referential action as the owner of the referencing table
 * (splitdb.reference_relay_action(), refcheck_act.c).  That grants rights,
 * so the proof of the session is not enough: code that runs inside it (a
 * trigger that a write through the shim fires there) could call the function
 * too.  Each such call carries its own MAC, keyed with a key that both ends
 * derive from the secret and the proof's nonce and never send, over a
 * counter that only grows and the whole request: only splitdb in the issuing
 * database can make one, and a call made once cannot be made again.  The
 * checks' lookups as a table's owner (refcheck_lookup.c) are such requests
 * too; splitdb's own check connections are proved as they open
 * (splitdb_origin_prove_own): they run nothing but splitdb's lookups.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/origin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "foreign/fdwapi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "reference/mapping.h"
#include "reference/origin.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_origin_challenge);
PG_FUNCTION_INFO_V1(splitdb_origin_prove);
PG_FUNCTION_INFO_V1(splitdb_origin_withdraw);
PG_FUNCTION_INFO_V1(splitdb_origin_key_make);

#define ORIGIN_SECRET_LEN	32
#define ORIGIN_NONCE_LEN	32

/* a postgres_fdw connection this session proved itself on */
typedef struct ProvenConn
{
	PGconn	   *conn;
	int			pid;			/* the remote backend: the same conn, not a new one */
	Oid			serverid;
	bool		confirmed;		/* false: the proof was sent, its answer not seen */
	uint8		action_key[PG_SHA256_DIGEST_LENGTH];	/* see derive_action_key */
	int64		action_counter; /* the last action signed on it */
} ProvenConn;

/* the receiving end: the pending nonce and what this session proved */
static uint8 nonce[ORIGIN_NONCE_LEN];
static bool nonce_pending = false;
static char *proven_location = NULL;
static uint8 action_key[PG_SHA256_DIGEST_LENGTH];
static int64 action_counter = 0;	/* the last action accepted */

/* the issuing end: connections proved (TopMemoryContext), servers not to prove */
static List *proven_conns = NIL;
static List *tainted_servers = NIL;

/* the issuing end: servers whose secret this transaction found missing */
static List *keyless_servers = NIL;
static bool callback_registered = false;

static void register_origin_callback(void);

/*
 * key_table_owner
 *		The owner of splitdb.origin_key, InvalidOid where there is none.
 */
static Oid
key_table_owner(void)
{
	Oid			nsp = get_namespace_oid("splitdb", true);
	Oid			relid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	relid = get_relname_relid("origin_key", nsp);
	if (!OidIsValid(relid))
		return InvalidOid;
	return splitdb_catalog_relowner(relid);
}

/* key_table_owner() for origin_pair.c */
Oid
splitdb_origin_key_owner(void)
{
	return key_table_owner();
}

/*
 * splitdb_origin_forget_keyless
 *		This backend is about to write splitdb.origin_key: forget which
 *		servers this transaction found without a secret.
 */
void
splitdb_origin_forget_keyless(void)
{
	list_free(keyless_servers);
	keyless_servers = NIL;
}

/*
 * run_as_key_owner
 *		Run one query of splitdb.origin_key as its owner, as of now: the role at
 *		work (a writer, a remote login) cannot read the table.  The caller
 *		is not connected to SPI.  Returns the first row's values, copied into
 *		the caller's memory, with their null flags in *isnull; NULL when
 *		there is no row or no table.
 */
static Datum *
run_as_key_owner(const char *sql, int nargs, Oid *types, Datum *args,
				 bool **isnull)
{
	Oid			owner = key_table_owner();
	MemoryContext caller = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec;
	Datum	   *values = NULL;
	bool		pushed = false;

	if (!OidIsValid(owner))
		return NULL;
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	splitdb_spi_connect();

	/*
	 * Read only: a statement about to run must not see its command counter
	 * move.  As of now, not under the statement's snapshot: a transaction
	 * older than the secret (REPEATABLE READ begun before a cutover made or
	 * re-made it) would otherwise prove with a secret the other end no
	 * longer has, or with none.
	 */
	(void) splitdb_spi_exec_latest(sql, nargs, types, args, NULL, 0);
	if (SPI_tuptable != NULL && SPI_processed > 0)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		HeapTuple	tup = SPI_tuptable->vals[0];
		MemoryContext spi = MemoryContextSwitchTo(caller);

		values = palloc(sizeof(Datum) * desc->natts);
		*isnull = palloc(sizeof(bool) * desc->natts);
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			values[i] = heap_getattr(tup, i + 1, desc, &(*isnull)[i]);
			if (!(*isnull)[i])
				values[i] = datumCopy(values[i], att->attbyval, att->attlen);
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	if (pushed)
		PopActiveSnapshot();
	return values;
}

/*
 * read_key
 *		The secret this database shares with another, found by the column
 *		"location" (the other database's location) or "server" (the server
 *		here that reaches it).  Returns false when there is none; else sets
 *		*here (this database's location, as the other one knows it) and
 *		*secret.
 */
static bool
read_key(bool by_server, const char *value, char **here, bytea **secret)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(value)};
	bool	   *isnull;
	Datum	   *row;

	row = run_as_key_owner(by_server ?
						   "SELECT k.here, k.secret FROM splitdb.origin_key k"
						   " WHERE k.server::pg_catalog.text OPERATOR(pg_catalog.=) $1" :
						   "SELECT k.here, k.secret FROM splitdb.origin_key k"
						   " WHERE k.location OPERATOR(pg_catalog.=) $1",
						   1, types, args, &isnull);
	if (row == NULL || isnull[0] || isnull[1])
		return false;
	*here = TextDatumGetCString(row[0]);
	*secret = DatumGetByteaPP(row[1]);
	return true;
}

/*
 * hmac_parts
 *		HMAC-SHA256 keyed with key of the concatenation of nparts byte
 *		strings, into mac (PG_SHA256_DIGEST_LENGTH bytes).
 */
static void
hmac_parts(const uint8 *key, int key_len, int nparts, const uint8 *const *parts,
		   const int *lens, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;

	if (ctx == NULL)
		elog(ERROR, "out of memory");
	ok = pg_hmac_init(ctx, key, key_len) >= 0;
	for (int i = 0; ok && i < nparts; i++)
		ok = pg_hmac_update(ctx, parts[i], lens[i]) >= 0;
	if (!ok || pg_hmac_final(ctx, mac, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute an HMAC: %s", why);
	}
	pg_hmac_free(ctx);
}

/*
 * compute_mac
 *		HMAC-SHA256 of the nonce and the claimed location, keyed with the
 *		pair's secret, into mac (PG_SHA256_DIGEST_LENGTH bytes).
 */
static void
compute_mac(bytea *secret, const uint8 *nonce_bytes, const char *location,
			uint8 *mac)
{
	const uint8 *parts[2] = {nonce_bytes, (const uint8 *) location};
	int			lens[2] = {ORIGIN_NONCE_LEN, strlen(location)};

	hmac_parts((const uint8 *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
			   2, parts, lens, mac);
}

/*
 * derive_action_key
 *		The key of the action MACs of one proved session, into key:
 *		HMAC-SHA256 of the proof's nonce, the location and a NUL byte
 *		followed by "action", keyed with the pair's secret.  A location
 *		holds no NUL, so the proof's own MAC, which goes over the wire, is
 *		never this key.
 */
static void
derive_action_key(bytea *secret, const uint8 *nonce_bytes, const char *location,
				  uint8 *key)
{
	static const uint8 tail[7] = {0, 'a', 'c', 't', 'i', 'o', 'n'};
	const uint8 *parts[3] = {nonce_bytes, (const uint8 *) location, tail};
	int			lens[3] = {ORIGIN_NONCE_LEN, strlen(location), sizeof(tail)};

	hmac_parts((const uint8 *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
			   3, parts, lens, key);
}

/*
 * mac_differs
 *		Whether mac_hex, a MAC in hex as a session sent it, is not expected
 *		(PG_SHA256_DIGEST_LENGTH bytes); compared in constant time.
 */
static bool
mac_differs(const char *mac_hex, const uint8 *expected)
{
	uint8		given[PG_SHA256_DIGEST_LENGTH];
	int			diff = 0;

	memset(given, 0, sizeof(given));
	if (strlen(mac_hex) != PG_SHA256_DIGEST_LENGTH * 2 ||
		strspn(mac_hex, "0123456789abcdefABCDEF") != PG_SHA256_DIGEST_LENGTH * 2)
		diff = 1;
	else
		hex_decode(mac_hex, PG_SHA256_DIGEST_LENGTH * 2, (char *) given);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		diff |= expected[i] ^ given[i];
	return diff != 0;
}

/* the MAC of one action request (a C string) under a session's action key */
static void
action_mac(const uint8 *key, const char *request, uint8 *mac)
{
	const uint8 *parts[1] = {(const uint8 *) request};
	int			lens[1] = {strlen(request)};

	hmac_parts(key, PG_SHA256_DIGEST_LENGTH, 1, parts, lens, mac);
}

/* bytes as lower-case hex, NUL-terminated */
static char *
hex_of(const uint8 *bytes, int len)
{
	char	   *out = palloc(len * 2 + 1);

	hex_encode((const char *) bytes, len, out);
	out[len * 2] = '\0';
	return out;
}

/* ----------------------------------------------------------------
 * The receiving end
 * ---------------------------------------------------------------- */

/*
 * splitdb_origin_proven
 *		The location whose secret this session proved, or NULL.
 */
const char *
splitdb_origin_proven(void)
{
	return proven_location;
}

/* forget what this session proved, and the pending nonce */
static void
forget_proof(void)
{
	if (proven_location != NULL)
		pfree(proven_location);
	proven_location = NULL;
	memset(action_key, 0, sizeof(action_key));
	action_counter = 0;
	nonce_pending = false;
	memset(nonce, 0, sizeof(nonce));
}

/*
 * splitdb_origin_challenge
 *		splitdb.origin_challenge(): a fresh nonce, in hex, for the next
 *		splitdb.origin_prove() of this session.  Forgets any earlier proof.
 */
Datum
splitdb_origin_challenge(PG_FUNCTION_ARGS)
{
	forget_proof();
	if (!pg_strong_random(nonce, ORIGIN_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));
	nonce_pending = true;
	PG_RETURN_TEXT_P(cstring_to_text(hex_of(nonce, ORIGIN_NONCE_LEN)));
}

/*
 * splitdb_origin_prove
 *		splitdb.origin_prove(location, mac): prove that this session's
 *		writes come from splitdb in the database at location.  mac is the
 *		hex of HMAC-SHA256(secret, nonce || location) for the nonce of the
 *		last splitdb.origin_challenge(), which serves this one attempt.
 *		Raises 28000 unless the MAC matches this database's secret for
 *		location; the session then proves nothing.
 */
Datum
splitdb_origin_prove(PG_FUNCTION_ARGS)
{
	char	   *location = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *mac_hex = text_to_cstring(PG_GETARG_TEXT_PP(1));
	uint8		challenge[ORIGIN_NONCE_LEN];
	bool		had_nonce = nonce_pending;
	uint8		expected[PG_SHA256_DIGEST_LENGTH];
	char	   *here;
	bytea	   *secret;

	memcpy(challenge, nonce, ORIGIN_NONCE_LEN);
	forget_proof();
	if (!had_nonce)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not prove that this session comes from \"%s\"", location),
				 errdetail("No challenge is pending in this session."),
				 errhint("splitdb proves its own sessions: it calls splitdb.origin_challenge() and then splitdb.origin_prove() once.")));
	if (!read_key(false, location, &here, &secret))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not prove that this session comes from \"%s\"", location),
				 errdetail("This database shares no secret with \"%s\".", location),
				 errhint("Installing the cross-service references makes the secrets of the databases that hold their ends.")));
	compute_mac(secret, challenge, location, expected);
	if (mac_differs(mac_hex, expected))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not prove that this session comes from \"%s\"", location),
				 errdetail("The proof does not match the secret this database shares with \"%s\".", location),
				 errhint("If splitdb itself failed here, the two databases hold different secrets: install the references again, with splitdb_reference_mode(reference_id, 'strict').")));
	derive_action_key(secret, challenge, location, action_key);
	action_counter = 0;
	proven_location = MemoryContextStrdup(TopMemoryContext, location);
	PG_RETURN_VOID();
}

/*
 * check_request
 *		Accept one request of splitdb in the proved database, or raise
 *		42501 with message (which names what the request would do) and
 *		function (the SQL function it calls) in the hint: request (the text
 *		the caller makes, the counter in it) must carry mac_hex, the hex of
 *		its HMAC-SHA256 under this session's action key, and a counter above
 *		every one accepted since the proof.  Nothing else can make the MAC:
 *		not a client, not code that runs inside the proved session.  A
 *		refused request changes nothing, the counter included.
 */
static void
check_request(int64 counter, const char *mac_hex, const char *request,
			  const char *message, const char *function)
{
	uint8		expected[PG_SHA256_DIGEST_LENGTH];
	bool		forged;

	if (proven_location == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", message),
				 errdetail("This session did not prove which database it comes from."),
				 errhint("Only splitdb's enforcement in another database calls %s, on a session it proved.",
						 function)));
	action_mac(action_key, request, expected);
	forged = mac_differs(mac_hex, expected);
	if (forged || counter <= action_counter)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", message),
				 errdetail(forged ?
						   "The request does not carry the MAC of the database \"%s\" that this session proved." :
						   "The request repeats an earlier one of the database \"%s\" that this session proved.",
						   proven_location),
				 errhint("Only splitdb's enforcement in another database calls %s, once per request.",
						 function)));
	action_counter = counter;
}

/*
 * splitdb_origin_check_action
 *		check_request() for splitdb.reference_relay_action().
 */
void
splitdb_origin_check_action(int64 counter, const char *mac_hex, const char *request)
{
	check_request(counter, mac_hex, request,
				  "permission denied to apply a referential action of another database",
				  "splitdb.reference_relay_action()");
}

/*
 * splitdb_origin_check_lookup
 *		check_request() for splitdb.reference_lookup().
 */
void
splitdb_origin_check_lookup(int64 counter, const char *mac_hex, const char *request)
{
	check_request(counter, mac_hex, request,
				  "permission denied to look up keys for another database",
				  "splitdb.reference_lookup()");
}

/*
 * splitdb_origin_withdraw
 *		splitdb.origin_withdraw(): this session proves nothing any more.
 */
Datum
splitdb_origin_withdraw(PG_FUNCTION_ARGS)
{
	forget_proof();
	PG_RETURN_VOID();
}

/*
 * splitdb_origin_key_make
 *		splitdb.origin_key_make(location, server, here): the secret this
 *		database shares with the database at location, made now (random)
 *		when there is none, in hex.  server names the server here that
 *		reaches location (NULL: none), here this database's location.  The
 *		secret travels only as this result, never as a statement.
 */
Datum
splitdb_origin_key_make(PG_FUNCTION_ARGS)
{
	char	   *location = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *here;
	bytea	   *secret;
	Oid			types[4] = {TEXTOID, NAMEOID, TEXTOID, BYTEAOID};
	Datum		args[4];
	char		nulls[5] = "    ";
	const char *sql = "INSERT INTO splitdb.origin_key AS k (location, server, here, secret)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT (location) DO UPDATE"
		" SET server = excluded.server, here = excluded.here";
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the location of splitdb.origin_key_make() must not be null"),
				 errhint("splitdb calls this function when it installs cross-service references.")));
	if (!read_key(false, location, &here, &secret))
	{
		secret = palloc(VARHDRSZ + ORIGIN_SECRET_LEN);
		SET_VARSIZE(secret, VARHDRSZ + ORIGIN_SECRET_LEN);
		if (!pg_strong_random(VARDATA(secret), ORIGIN_SECRET_LEN))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random secret")));
	}
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	args[2] = PG_GETARG_DATUM(2);
	args[3] = PointerGetDatum(secret);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	splitdb_origin_forget_keyless();
	splitdb_spi_connect();
	rc = splitdb_spi_exec(sql, 4, types, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		splitdb_spi_failed(sql, rc);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(hex_of((uint8 *) VARDATA_ANY(secret),
											VARSIZE_ANY_EXHDR(secret))));
}

/* ----------------------------------------------------------------
 * The issuing end
 * ---------------------------------------------------------------- */

/* the transaction ends: servers may be proved again */
static void
origin_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		list_free(tainted_servers);
		tainted_servers = NIL;
		splitdb_origin_forget_keyless();
	}
}

static ProvenConn *
find_proven(PGconn *conn)
{
	ListCell   *lc;

	foreach(lc, proven_conns)
	{
		ProvenConn *pc = lfirst(lc);

		if (pc->conn == conn && pc->pid == splitdb_remote_backend_pid(conn))
			return pc;
	}
	return NULL;
}

/*
 * splitdb_origin_prove_connection
 *		Make the session behind conn (postgres_fdw's connection to serverid)
 *		count as coming from this database, before splitdb writes there
 *		what it enforces here: a write through a shim, an action statement.
 *		Does nothing when it is proved already, when this database shares
 *		no secret with the server's (the other end then enforces the
 *		references itself), or when the transaction wrote through another
 *		foreign table of that server.  A failed proof raises the other
 *		database's error.
 */
void
splitdb_origin_prove_connection(PGconn *conn, Oid serverid)
{
	if (list_member_oid(tainted_servers, serverid))
		return;
	(void) splitdb_origin_prove_own(conn, serverid);
}

/*
 * splitdb_origin_forget_connection
 *		conn, a connection of splitdb's own, is about to close: forget its
 *		proof, so that a later connection at the same address is not taken
 *		for it.
 */
void
splitdb_origin_forget_connection(PGconn *conn)
{
	ListCell   *lc;

	foreach(lc, proven_conns)
	{
		ProvenConn *pc = lfirst(lc);

		if (pc->conn != conn)
			continue;
		proven_conns = foreach_delete_current(proven_conns, lc);
		explicit_bzero(pc, sizeof(ProvenConn));
		pfree(pc);
	}
}

/*
 * splitdb_origin_prove_own
 *		splitdb_origin_prove_connection() for a connection of splitdb's own
 *		(checkconn.c), which runs nothing but splitdb's lookups, so that
 *		what the transaction did through postgres_fdw's connections does
 *		not concern it.  conn is out of pipeline mode, with no command in
 *		progress.  Returns whether conn is proved: false when this database
 *		shares no secret with the server's.
 */
bool
splitdb_origin_prove_own(PGconn *conn, Oid serverid)
{
	ForeignServer *server;
	ProvenConn *pc;
	char	   *here;
	bytea	   *secret;
	uint8		challenge[ORIGIN_NONCE_LEN];
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	const char *params[2];
	char	   *nonce_hex;

	pc = find_proven(conn);
	if (pc != NULL && pc->confirmed)
		return true;
	/* no secret: read splitdb.origin_key once per transaction, not per lookup */
	if (list_member_oid(keyless_servers, serverid))
		return false;
	server = GetForeignServer(serverid);
	if (!read_key(true, server->servername, &here, &secret))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		register_origin_callback();
		keyless_servers = lappend_oid(keyless_servers, serverid);
		MemoryContextSwitchTo(old);
		return false;
	}

	/* from the first byte sent, withdraw before another write */
	if (pc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		pc = palloc0(sizeof(ProvenConn));
		pc->conn = conn;
		pc->pid = splitdb_remote_backend_pid(conn);
		pc->serverid = serverid;
		proven_conns = lappend(proven_conns, pc);
		MemoryContextSwitchTo(old);
	}
	pc->confirmed = false;

	nonce_hex = splitdb_remote_scalar(conn, "SELECT splitdb.origin_challenge()", 0, NULL, NULL);
	if (nonce_hex == NULL)
		nonce_hex = "";
	if (strlen(nonce_hex) != ORIGIN_NONCE_LEN * 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the database of server \"%s\" answered splitdb.origin_challenge() with no nonce",
						server->servername),
				 errhint("Both databases must run the same version of splitdb.")));
	hex_decode(nonce_hex, ORIGIN_NONCE_LEN * 2, (char *) challenge);
	compute_mac(secret, challenge, here, mac);
	params[0] = here;
	params[1] = hex_of(mac, PG_SHA256_DIGEST_LENGTH);
	splitdb_remote_command(conn, "SELECT splitdb.origin_prove($1, $2)", 2, params, NULL);
	derive_action_key(secret, challenge, here, pc->action_key);
	pc->action_counter = 0;
	pc->confirmed = true;
	return true;
}

/*
 * splitdb_origin_next_action
 *		The counter of the next action request on conn, a proved
 *		connection; 0 when conn is not one (its session would refuse the
 *		request).  Pass the request made with it to splitdb_origin_sign().
 */
int64
splitdb_origin_next_action(PGconn *conn)
{
	ProvenConn *pc = find_proven(conn);

	if (pc == NULL || !pc->confirmed)
		return 0;
	return ++pc->action_counter;
}

/*
 * splitdb_origin_sign
 *		The MAC (hex) of an action request on conn, a proved connection,
 *		under its action key (see splitdb_origin_check_action).
 */
char *
splitdb_origin_sign(PGconn *conn, const char *request)
{
	ProvenConn *pc = find_proven(conn);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];

	if (pc == NULL || !pc->confirmed)
		elog(ERROR, "the connection of an action request is not proved");
	action_mac(pc->action_key, request, mac);
	return hex_of(mac, PG_SHA256_DIGEST_LENGTH);
}

/*
 * is_shim
 *		Whether relid is a shim: a foreign table with splitdb's shim trigger,
 *		whose writes this database's reference triggers enforce.
 */
static bool
is_shim(Oid relid)
{
	Oid			fn;
	Relation	tgrel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	fn = LookupFuncName(list_make2(makeString("splitdb"), makeString("shim_statement")),
						0, NULL, true);
	if (!OidIsValid(fn))
		return false;
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("splitdb_shim"));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 2, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		found = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid == fn;
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return found;
}

/* splitdb_origin_is_shim: is_shim() for other files */
bool
splitdb_origin_is_shim(Oid relid)
{
	return is_shim(relid);
}

/* postgres_fdw's connection for userid's mapping on serverid */
static PGconn *
fdw_connection_for(Oid userid, Oid serverid)
{
	return splitdb_remote_fdw_connection(GetUserMapping(userid, serverid));
}

/*
 * withdraw_server
 *		Prove no connection to serverid until the transaction ends, and
 *		withdraw the proof of the connection of userid's user mapping there,
 *		if it has one: a statement is about to reach that server through a
 *		foreign table that is not a shim.
 */
static void
withdraw_server(Oid serverid, Oid userid)
{
	ListCell   *lc;
	PGconn	   *conn;
	ProvenConn *pc;

	if (!list_member_oid(tainted_servers, serverid))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		tainted_servers = lappend_oid(tainted_servers, serverid);
		MemoryContextSwitchTo(old);
	}
	foreach(lc, proven_conns)
	{
		if (((ProvenConn *) lfirst(lc))->serverid == serverid)
			break;
	}
	if (lc == NULL)
		return;					/* nothing proved on that server: only postgres_fdw's */
	conn = fdw_connection_for(userid, serverid);
	pc = find_proven(conn);
	if (pc == NULL)
		return;
	splitdb_remote_command(conn, "SELECT splitdb.origin_withdraw()", 0, NULL, NULL);
	proven_conns = list_delete_ptr(proven_conns, pc);
	pfree(pc);
}

static void
register_origin_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(origin_xact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * splitdb_origin_note_write
 *		A statement writes through foreign table relid with userid's user
 *		mapping (fdwwatch.c).  Through a shim: prove its connection.
 *		Through another foreign table: withdraw the proof of the connection
 *		it writes on, if it has one, and prove no connection to its server
 *		until the transaction ends.
 */
void
splitdb_origin_note_write(Oid relid, Oid userid)
{
	Oid			serverid = GetForeignServerIdByRelId(relid);

	register_origin_callback();
	if (is_shim(relid))
	{
		if (!list_member_oid(tainted_servers, serverid))
			splitdb_origin_prove_connection(fdw_connection_for(userid, serverid), serverid);
		return;
	}
	withdraw_server(serverid, userid);
}

/*
 * splitdb_origin_note_read
 *		A statement reads through foreign table relid with userid's user
 *		mapping (fdwwatch.c: a scan, or ANALYZE).  Through a shim: nothing
 *		to do.  Through another foreign table, as for a write: withdraw and
 *		prove nothing on that server until the transaction ends.
 *
 * A read is enough to run the caller's code in the other database: a
 * foreign table of one's own over a view there that calls a volatile
 * function, which can write.  On a proved connection those writes would be
 * skipped by the other database's checks, and no shim trigger here sees
 * them.
 */
void
splitdb_origin_note_read(Oid relid, Oid userid)
{
	register_origin_callback();
	if (is_shim(relid))
		return;
	withdraw_server(GetForeignServerIdByRelId(relid), userid);
}
