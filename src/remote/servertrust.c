/*-------------------------------------------------------------------------
 *
 * servertrust.c
 *	  Which postgres_fdw servers splitdb connects through: those a
 *	  superuser owns.
 *
 * Whoever owns a foreign server may change where it connects (ALTER SERVER
 * ... OPTIONS host, port, dbname).  Every connection splitdb opens through a
 * server sends a user mapping's password there, often one that is not the
 * server owner's (the job's superuser, a table owner whose checks go out
 * through it, a mapping a writer borrows), and a proof of origin sends a
 * MAC under a secret that splitdb keeps from every role.  A server owned by
 * a role that is no superuser could send all of that to a listener of that
 * role's, which would then also answer every check as it pleased.  So
 * splitdb opens no connection, its own or postgres_fdw's, through a server
 * whose owner is not a superuser; the refusal comes before any packet.
 *
 * Invariants:
 * - Checked at every connection, not only when a server is adopted or
 *   named: a superuser may hand a server to another role at any time.
 * - The check reads the server's catalog row as the caller got it
 *   (GetForeignServer), which ALTER SERVER ... OWNER TO invalidates.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/servertrust.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "remote/remote.h"

/*
 * splitdb_remote_check_server_owner
 *		Raise 42501 unless a superuser owns server.
 */
void
splitdb_remote_check_server_owner(ForeignServer *server)
{
	const char *owner;

	if (superuser_arg(server->owner))
		return;
	owner = GetUserNameFromId(server->owner, true);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("server \"%s\" is owned by role \"%s\", which is not a superuser",
					server->servername, owner ? owner : "?"),
			 errdetail("Its owner may change where it connects, and splitdb's connections through it carry user mappings' passwords and splitdb's proofs of origin."),
			 errhint("Make a superuser its owner with ALTER SERVER %s OWNER TO, or use another server.",
					 quote_identifier(server->servername))));
}
