/*-------------------------------------------------------------------------
 *
 * execdepth.c
 *	  How deep in nested executor runs this backend is.
 *
 * A statement that a function runs while another statement executes (a
 * CHECK constraint's, a domain's CHECK's or a column DEFAULT's function
 * that writes, through SPI or an SQL function) runs and finishes inside
 * the outer statement's ExecutorRun.  Neither ActivePortal nor the trigger
 * depth tells it apart from the client's statement: it has no portal of
 * its own, and no trigger runs it.  The depth counted here does: the AFTER
 * ROW triggers of the client's statement fire from its ExecutorFinish at
 * depth 1, those of a statement nested in it at 2 or more, and deferred
 * ones at commit, at 0 (refcheck_relay.c).  The statement of the outermost
 * run tells the client's statement from the actions of rules that the
 * portal runs after it (a DO ALSO rule's UPDATE of the same table), each
 * at depth 1 too, and its command id the rows it wrote itself from those
 * that a foreign key's action changed after it (their triggers fire on the
 * statement's list, at depth 1 too, but a later command wrote them).
 *
 * The hooks count every ExecutorRun and ExecutorFinish around the call, as
 * pg_stat_statements counts its nesting level.  They are in place from the
 * library's load: a statement that was already running when the library
 * loaded counts one less than it is deep, for as long as it runs.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/execdepth.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"

#include "reference/execdepth.h"

static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;

/* ExecutorRun and ExecutorFinish calls under way in this backend */
static int	depth = 0;

/* the statement of the outermost one, NULL at depth 0 */
static PlannedStmt *outer_stmt = NULL;

/* the command id that statement writes its rows with */
static CommandId outer_cid = InvalidCommandId;

/*
 * set_outer
 *		Keep the outermost run's statement and the command id its rows are
 *		written with (ExecutorStart set it; InvalidCommandId where the
 *		statement has no executor state).
 */
static void
set_outer(QueryDesc *queryDesc)
{
	outer_stmt = queryDesc->plannedstmt;
	outer_cid = queryDesc->estate != NULL ?
		queryDesc->estate->es_output_cid : InvalidCommandId;
}

static void
depth_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				   bool execute_once)
{
	PlannedStmt *save_stmt = outer_stmt;
	CommandId	save_cid = outer_cid;

	if (depth == 0)
		set_outer(queryDesc);
	depth++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		depth--;
		outer_stmt = save_stmt;
		outer_cid = save_cid;
	}
	PG_END_TRY();
}

static void
depth_executor_finish(QueryDesc *queryDesc)
{
	PlannedStmt *save_stmt = outer_stmt;
	CommandId	save_cid = outer_cid;

	if (depth == 0)
		set_outer(queryDesc);
	depth++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		depth--;
		outer_stmt = save_stmt;
		outer_cid = save_cid;
	}
	PG_END_TRY();
}

/*
 * splitdb_execdepth_init
 *		Install the hooks; from _PG_init.
 */
void
splitdb_execdepth_init(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = depth_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = depth_executor_finish;
}

/*
 * splitdb_execdepth
 *		The ExecutorRun and ExecutorFinish calls under way: 1 while the
 *		client's statement runs or fires its AFTER triggers, more in the
 *		statements nested in it, 0 between statements (at commit, say).
 */
int
splitdb_execdepth(void)
{
	return depth;
}

/*
 * splitdb_execdepth_outer_stmt
 *		The statement of the outermost ExecutorRun or ExecutorFinish under
 *		way: one of the portal's statements (the client's, or one that a
 *		rule added to it), whose AFTER triggers fire at depth 1; NULL
 *		between statements.
 */
PlannedStmt *
splitdb_execdepth_outer_stmt(void)
{
	return outer_stmt;
}

/*
 * splitdb_execdepth_outer_cid
 *		The command id with which the statement of the outermost run writes
 *		its rows (their cmin, or the cmax of the rows it deletes);
 *		InvalidCommandId between statements.  A statement that runs later
 *		in the same transaction writes with a higher one, even when its
 *		AFTER triggers fire at depth 1: the query of a foreign key's action
 *		(ON DELETE CASCADE, SET NULL, SET DEFAULT), which PostgreSQL runs
 *		through SPI without firing its triggers itself, queues them on the
 *		list of the statement whose row fired the action.
 */
CommandId
splitdb_execdepth_outer_cid(void)
{
	return outer_cid;
}
