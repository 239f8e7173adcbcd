/*-------------------------------------------------------------------------
 *
 * checkconn_ahead.c
 *	  The answers of statements sent ahead on splitdb's check connections
 *	  (splitdb_checkconn_send_ahead, checkconn.c): taken by the caller,
 *	  read first when they are still on their way, or forgotten.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/checkconn_ahead.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"

#include "remote/checkconn.h"
#include "remote/checkconn_int.h"
#include "remote/remote.h"

/* how long the answers of statements sent ahead are awaited at an abort */
#define AHEAD_WAIT_MS 100

/*
 * find_ahead
 *		The connection and item of a handle: *queued tells whether its
 *		answer is still unread.  NULL when there is no such item (its
 *		connection was closed, or its transaction ended).
 */
static Item *
find_ahead(uint64 id, CheckConn **ccp, bool *queued)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	if (splitdb_checkconn_conns == NULL || id == 0)
		return NULL;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		for (int which = 0; which < 2; which++)
		{
			ListCell   *lc;

			foreach(lc, which == 0 ? cc->ahead : cc->queue)
			{
				Item	   *it = lfirst(lc);

				if (it->kind == ITEM_AHEAD && it->id == id)
				{
					hash_seq_term(&scan);
					*ccp = cc;
					*queued = (which == 1);
					return it;
				}
			}
		}
	}
	return NULL;
}

/*
 * splitdb_checkconn_take_ahead
 *		The answer to a statement sent ahead, read now if it was not yet:
 *		a PGresult the caller must PQclear(), or NULL when there is none
 *		(the statement failed, or its connection or transaction ended).
 *		A remote error read on the way is relayed, as splitdb_checkconn_run
 *		relays it.
 */
PGresult *
splitdb_checkconn_take_ahead(uint64 id, const char *service)
{
	CheckConn  *cc;
	bool		queued;
	Item	   *it = find_ahead(id, &cc, &queued);
	PGresult   *res;
	MemoryContext old;

	if (it == NULL)
		return NULL;
	if (queued)
	{
		ReadState	rs = {NULL, NULL, NULL, false};
		Item	   *upto = it;
		bool		after = false;
		ListCell   *lc;

		/* through the sync behind it: the remote session is then idle */
		foreach(lc, cc->queue)
		{
			Item	   *q = lfirst(lc);

			if (q == it)
				after = true;
			else if (after && q->kind == ITEM_SYNC)
			{
				upto = q;
				break;
			}
		}
		if (!splitdb_checkconn_drain(cc, upto, &rs))
		{
			PQclear(rs.first_error);
			splitdb_checkconn_lose(cc);
			return NULL;
		}
		if (rs.ahead_failed)
		{
			/* a wrong guess before it ended the remote transaction: do without */
			PQclear(rs.first_error);
			return NULL;
		}
		if (rs.first_error != NULL)
		{
			cc->failed = true;
			splitdb_remote_report(rs.first_error, cc->conn, rs.error_sql, service);
		}
		if (find_ahead(id, &cc, &queued) == NULL)
			return NULL;
	}
	res = it->result;
	it->result = NULL;
	old = MemoryContextSwitchTo(TopMemoryContext);
	cc->ahead = list_delete_ptr(cc->ahead, it);
	MemoryContextSwitchTo(old);
	splitdb_checkconn_free_item(it);
	return res;
}

/*
 * splitdb_checkconn_forget_ahead
 *		The caller no longer wants the answer to a statement sent ahead.
 */
void
splitdb_checkconn_forget_ahead(uint64 id)
{
	CheckConn  *cc;
	bool		queued;
	Item	   *it = find_ahead(id, &cc, &queued);

	if (it == NULL)
		return;
	if (queued)
		it->wanted = false;
	else
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		cc->ahead = list_delete_ptr(cc->ahead, it);
		MemoryContextSwitchTo(old);
		splitdb_checkconn_free_item(it);
	}
}

/*
 * splitdb_checkconn_ahead_pending
 *		Whether a statement sent ahead is still unanswered, and waits in the
 *		other database (for a lock), where it would hold up the end of the
 *		remote transaction and so the session's next checks: the answers
 *		are read for up to AHEAD_WAIT_MS first (one arrives in about a
 *		round trip; interrupts are not serviced: this runs at an abort).  An
 *		error or a lost connection read on the way counts too:
 *		settle_conn() ends the remote transaction either way.
 */
bool
splitdb_checkconn_ahead_pending(CheckConn *cc)
{
	ReadState	rs = {NULL, NULL, NULL, false};
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), AHEAD_WAIT_MS);
	bool		unanswered = false;
	ListCell   *lc;

	foreach(lc, cc->queue)
		unanswered |= (((Item *) lfirst(lc))->kind == ITEM_AHEAD);
	if (!unanswered)
		return false;
	while (cc->queue != NIL && rs.first_error == NULL && !rs.lost)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (!PQconsumeInput(cc->conn))
			return true;
		if (PQisBusy(cc->conn))
		{
			if (left <= 0)
				return true;
			(void) WaitLatchOrSocket(NULL, WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									 PQsocket(cc->conn), left, SPLITDB_WAIT_EVENT_REMOTE);
			continue;
		}
		(void) splitdb_checkconn_drain(cc, linitial(cc->queue), &rs);
	}
	PQclear(rs.first_error);
	return rs.first_error != NULL || rs.lost || rs.ahead_failed;
}
