/*-------------------------------------------------------------------------
 *
 * refcheck_sql.c
 *	  The SQL of cross-service reference keys: lookups, key arrays, the
 *	  text of keys in messages.
 *
 * Keys travel as one text[] parameter per key column and are compared with
 * the other table's columns after a cast to that column's type, so a
 * statement is planned with the types of the table it reads, whatever the
 * types here.  Every name is quoted or schema-qualified, every value a
 * parameter, and the statements run with search_path pinned to pg_catalog
 * (splitdb_refcheck_pin_search_path).  Nothing here runs a statement.
 *
 * splitdb_refcheck_keys_from and splitdb_refcheck_key_match are public
 * (refcheck.h): splitdb_orphans builds its lookups with them.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#include "reference/refcheck.h"
#include "reference/refcheck_int.h"

/* ----------------------------------------------------------------
 * SQL fragments
 * ---------------------------------------------------------------- */

/*
 * splitdb_refcheck_keys_from
 *		"ROWS FROM (unnest($1::text[]), ...) WITH ORDINALITY AS k(v1, ..., i)",
 *		with n1..nn from $n+1..$2n after v1..vn when with_new.
 */
char *
splitdb_refcheck_keys_from(int nkeys, bool with_new)
{
	StringInfoData buf;
	int			nparams = with_new ? 2 * nkeys : nkeys;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "ROWS FROM (");
	for (int i = 1; i <= nparams; i++)
		appendStringInfo(&buf, "%spg_catalog.unnest($%d::pg_catalog.text[])", i > 1 ? ", " : "", i);
	appendStringInfoString(&buf, ") WITH ORDINALITY AS k(");
	for (int i = 1; i <= nkeys; i++)
		appendStringInfo(&buf, "v%d, ", i);
	if (with_new)
		for (int i = 1; i <= nkeys; i++)
			appendStringInfo(&buf, "n%d, ", i);
	appendStringInfoString(&buf, "i)");
	return buf.data;
}

/*
 * splitdb_refcheck_key_match
 *		"alias.c1 OPERATOR(schema.=) k.v1::type1 AND ...": the key columns
 *		of a table equal to the queued key, each value cast to the column's own
 *		type and compared with that type's equality.
 */
char *
splitdb_refcheck_key_match(const char *alias, char **cols, char **types,
						   int nkeys)
{
	return splitdb_refcheck_key_match_as(alias, cols, types, NULL, nkeys, true, NULL);
}

/*
 * splitdb_refcheck_key_match_as
 *		splitdb_refcheck_key_match() with the values read as valtypes (NULL:
 *		types), the other end's key types: compared as PostgreSQL's foreign
 *		key compares them (splitdb_refcheck_append_key_cond()), the
 *		columns being the referenced ones when col_referenced; collates
 *		(NULL: none) the COLLATE clauses of RefDef.fk_collates.
 */
char *
splitdb_refcheck_key_match_as(const char *alias, char **cols, char **types,
							  char **valtypes, int nkeys, bool col_referenced,
							  char **collates)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < nkeys; i++)
	{
		char	   *col = psprintf("%s.%s", alias, quote_identifier(cols[i]));
		char	   *val = psprintf("k.v%d", i + 1);

		if (i > 0)
			appendStringInfoString(&buf, " AND ");
		splitdb_refcheck_append_key_cond(&buf, col, types[i], val,
										 valtypes ? valtypes[i] : types[i],
										 col_referenced);
		if (collates != NULL && collates[i] != NULL)
			appendStringInfoString(&buf, collates[i]);
	}
	return buf.data;
}

/*
 * splitdb_refcheck_key_arrays
 *		One text[] Datum per key column (new: the new keys of updates).
 */
Datum *
splitdb_refcheck_key_arrays(RefDef *def, List *keys, bool new)
{
	int			n = list_length(keys);
	Datum	   *arrays = palloc(sizeof(Datum) * def->nkeys);

	for (int col = 0; col < def->nkeys; col++)
	{
		Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
		int			dims[1] = {n};
		int			lbs[1] = {1};
		int			row = 0;
		ListCell   *lc;

		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);
			char	   *v = new ? pk->new[col] : pk->old[col];

			nulls[row] = (v == NULL);
			elems[row] = v ? CStringGetTextDatum(v) : (Datum) 0;
			row++;
		}
		arrays[col] = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
														 TEXTOID, -1, false, TYPALIGN_INT));
	}
	return arrays;
}

/*
 * splitdb_refcheck_key_literals
 *		The text of splitdb_refcheck_key_arrays()'s arrays, one text[]
 *		literal per key column, made straight from the queued texts (new:
 *		the new keys of updates): every element double-quoted, with '"' and
 *		'\' escaped, a NULL written NULL, which array_in() reads back as
 *		the same elements.  For a remote statement's parameters; it spares
 *		the copies of construct_md_array() and array_out().
 */
const char **
splitdb_refcheck_key_literals(RefDef *def, List *keys, bool new)
{
	return splitdb_refcheck_key_literals_n(def->nkeys, keys, new);
}

/* splitdb_refcheck_key_literals() for keys of nkeys columns */
const char **
splitdb_refcheck_key_literals_n(int nkeys, List *keys, bool new)
{
	const char **values = palloc(sizeof(char *) * Max(nkeys, 1));

	for (int col = 0; col < nkeys; col++)
	{
		StringInfoData buf;
		ListCell   *lc;

		initStringInfo(&buf);
		appendStringInfoChar(&buf, '{');
		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);
			const char *v = new ? pk->new[col] : pk->old[col];

			if (foreach_current_index(lc) > 0)
				appendStringInfoChar(&buf, ',');
			if (v == NULL)
			{
				appendBinaryStringInfo(&buf, "NULL", 4);
				continue;
			}
			appendStringInfoChar(&buf, '"');
			for (const char *run = v; *run != '\0';)
			{
				size_t		plain = strcspn(run, "\"\\");

				appendBinaryStringInfo(&buf, run, (int) plain);
				run += plain;
				if (*run != '\0')
				{
					appendStringInfoChar(&buf, '\\');
					appendStringInfoChar(&buf, *run++);
				}
			}
			appendStringInfoChar(&buf, '"');
		}
		appendStringInfoChar(&buf, '}');
		values[col] = buf.data;
	}
	return values;
}

/* the text form of text[] Datums, for a remote statement's parameters */
const char **
splitdb_refcheck_array_texts(Datum *arrays, int n)
{
	const char **values = palloc(sizeof(char *) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = OidOutputFunctionCall(F_ARRAY_OUT, arrays[i]);
	return values;
}

/*
 * splitdb_refcheck_small_batch_sql
 *		The lookup of splitdb_refcheck_positions() for a batch of at most
 *		SPLITDB_REFCHECK_SMALL_BATCH keys, or NULL when the batch needs the
 *		join of splitdb_refcheck_key_batch_sql().
 *
 * The remote server plans these in a fraction of the time of the join
 * (the planning of the join costs more than its round trip): one key is
 * an equality on every key column; several keys of one column are an
 * "= ANY" of the keys, numbered with array_position().  array_position()
 * compares with the type's default equality, so two queued keys that are
 * equal values (1.0 and 1.00) number only the first;
 * splitdb_refcheck_positions() looks the rest up again with the join.
 */
char *
splitdb_refcheck_small_batch_sql(RefDef *def, int n, const char *table,
								 char **cols, char **types, char **valtypes,
								 bool lock, bool first_only)
{
	StringInfoData buf;

	if (n > SPLITDB_REFCHECK_SMALL_BATCH || (n > 1 && def->nkeys > 1))
		return NULL;
	/* "= ANY" and array_position() want the column's type: else the join */
	if (n > 1 && !splitdb_refcheck_same_key_types(types, valtypes, def->nkeys))
		return NULL;
	if (n > 1 && valtypes != NULL && def->side == 'p' && def->fk_collates != NULL)
		return NULL;
	initStringInfo(&buf);
	if (n == 1)
	{
		appendStringInfo(&buf, "SELECT 1 FROM %s t WHERE ", table);
		for (int i = 0; i < def->nkeys; i++)
		{
			char	   *col = psprintf("t.%s", quote_identifier(cols[i]));
			char	   *val = psprintf("($%d::pg_catalog.text[])[1]", i + 1);

			if (i > 0)
				appendStringInfoString(&buf, " AND ");
			splitdb_refcheck_append_key_cond(&buf, col, types[i], val,
											 valtypes ? valtypes[i] : types[i],
											 def->side == 'c');
			if (valtypes != NULL && def->side == 'p' && def->fk_collates != NULL &&
				def->fk_collates[i] != NULL)
				appendStringInfoString(&buf, def->fk_collates[i]);
		}
		appendStringInfoString(&buf, " LIMIT 1");
	}
	else
		appendStringInfo(&buf,
						 "SELECT pg_catalog.array_position($1::pg_catalog.text[]::%s[], t.%s) AS i"
						 " FROM %s t WHERE t.%s %s ANY ($1::pg_catalog.text[]::%s[])%s",
						 types[0], quote_identifier(cols[0]), table,
						 quote_identifier(cols[0]), splitdb_refcheck_eq_operator(types[0]),
						 types[0], first_only ? " ORDER BY 1 LIMIT 1" : "");
	if (lock)
		appendStringInfoString(&buf, " FOR KEY SHARE OF t");
	return buf.data;
}

/*
 * splitdb_refcheck_key_batch_sql
 *		The lookup of splitdb_refcheck_positions() for a batch of any size:
 *		a join with the keys.
 */
char *
splitdb_refcheck_key_batch_sql(RefDef *def, const char *table, char **cols,
							   char **types, char **valtypes, bool lock,
							   bool first_only)
{
	return psprintf("SELECT k.i FROM %s JOIN %s t ON %s%s%s",
					splitdb_refcheck_keys_from(def->nkeys, false), table,
					splitdb_refcheck_key_match_as("t", cols, types, valtypes,
												  def->nkeys, def->side == 'c',
												  (valtypes != NULL && def->side == 'p') ?
												  def->fk_collates : NULL),
					first_only ? " ORDER BY k.i LIMIT 1" : "",
					lock ? " FOR KEY SHARE OF t" : "");
}

/*
 * splitdb_refcheck_mark_hits
 *		Set hit[i] for each position i (1..n) that a row of a lookup names
 *		in its first column; returns how many were set.
 */
int
splitdb_refcheck_mark_hits(List *rows, int n, bool *hit)
{
	int			nhit = 0;
	ListCell   *lc;

	foreach(lc, rows)
	{
		char	   *v = ((char **) lfirst(lc))[0];
		int64		i = v ? pg_strtoint64(v) : 0;

		if (i >= 1 && i <= n && !hit[i])
		{
			hit[i] = true;
			nhit++;
		}
	}
	return nhit;
}

/*
 * splitdb_refcheck_table_name
 *		The bare relation name of a table that splitdb.reference_end names
 *		schema-qualified and quoted (public."Order" gives Order), for the
 *		messages that name it as PostgreSQL's own foreign-key errors name a
 *		relation: raw, in double quotes.
 */
const char *
splitdb_refcheck_table_name(const char *qualified)
{
	List	   *names = stringToQualifiedNameList(qualified);

	return strVal(llast(names));
}

/* "(c1, c2)" and "(v1, v2)" of a key, for messages */
char *
splitdb_refcheck_key_columns_text(char **cols, int nkeys)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", cols[i]);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

char *
splitdb_refcheck_key_values_text(char **values, int nkeys)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", values[i] ? values[i] : "null");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * splitdb_refcheck_single_key_sql
 *		The lookup of one key on splitdb's own connection, which locks the
 *		row it finds: "SELECT 1 FROM t WHERE t.c1 = $1::type1 AND ... LIMIT
 *		1 FOR KEY SHARE OF t".  Each parameter is a key column's text,
 *		read by the input function of the type the column compares as.
 *		Made once per definition, in the definition's memory.
 */
char *
splitdb_refcheck_single_key_sql(RefDef *def)
{
	StringInfoData buf;
	MemoryContext old;

	if (def->single_sql != NULL)
		return def->single_sql;
	old = MemoryContextSwitchTo(splitdb_refcheck_def_context());
	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT 1 FROM %s t WHERE ", def->other_table);
	for (int i = 0; i < def->nkeys; i++)
	{
		char	   *col = psprintf("t.%s", quote_identifier(def->other_cols[i]));
		char	   *val = psprintf("$%d", i + 1);

		if (i > 0)
			appendStringInfoString(&buf, " AND ");
		splitdb_refcheck_append_key_cond(&buf, col, def->other_types[i], val,
										 def->own_types[i], true);
	}
	appendStringInfoString(&buf, " LIMIT 1 FOR KEY SHARE OF t");
	MemoryContextSwitchTo(old);
	def->single_sql = buf.data;
	return buf.data;
}

/*
 * splitdb_refcheck_action_sql
 *		The statement of a referential action (action 'c' CASCADE, 'n' SET
 *		NULL, 'd' SET DEFAULT) on the referencing rows of def's other end,
 *		for deleted keys or, is_update, changed ones: its parameters are
 *		the old keys' text[] per column, then for ON UPDATE CASCADE the new
 *		keys'.  SET DEFAULT, SET NULL and ON UPDATE CASCADE return the
 *		distinct new keys of the referencing rows, as the rows' column types
 *		and triggers left them (one row for all that SET NULL nulled), for the check that PostgreSQL makes of them: cast to the
 *		referenced columns' types, as PostgreSQL's comparison takes them (a
 *		character(n) key loses its padding), and read as text with the
 *		output settings pinned (splitdb_refcheck_act_as_owner).
 *		Everything outside pg_catalog is named with its schema.  The
 *		database that applies the statement makes it (for another
 *		database's action, from its own row of the reference's end:
 *		splitdb.reference_relay_action()).
 */
char *
splitdb_refcheck_action_sql(RefDef *def, char action, bool is_update)
{
	char	   *from = splitdb_refcheck_keys_from(def->nkeys, is_update && action == 'c');
	/*
	 * PostgreSQL 15 compares under a nondeterministic referenced key's
	 * collation in its ON DELETE CASCADE, as in its NO ACTION and RESTRICT
	 * checks, but not in ON UPDATE CASCADE, SET NULL and SET DEFAULT (its
	 * COLLATE goes to the SET list there): the same here.
	 */
	char	   *match = splitdb_refcheck_key_match_as("t", def->other_cols,
													  def->other_types, def->own_types,
													  def->nkeys, false,
													  (action == 'c' && !is_update) ?
													  def->fk_collates : NULL);
	StringInfoData sql;

	initStringInfo(&sql);
	if (action == 'c' && !is_update)
	{
		appendStringInfo(&sql, "DELETE FROM %s t USING %s WHERE %s",
						 def->other_table, from, match);
		return sql.data;
	}
	/* the distinct new keys, so that what comes back is bounded by them */
	appendStringInfo(&sql, "WITH splitdb_acted AS (UPDATE %s t SET ", def->other_table);
	for (int c = 0; c < def->nkeys; c++)
	{
		bool		set = true;

		/* ON DELETE SET NULL/DEFAULT (cols): only those columns */
		if (!is_update && def->nset > 0)
		{
			set = false;
			for (int s = 0; s < def->nset; s++)
				if (strcmp(def->set_cols[s], def->other_cols[c]) == 0)
					set = true;
		}
		if (!set)
			continue;
		if (sql.data[sql.len - 1] != ' ')
			appendStringInfoString(&sql, ", ");
		if (action == 'c')
			appendStringInfo(&sql, "%s = k.n%d::%s", quote_identifier(def->other_cols[c]),
							 c + 1, def->own_types[c]);
		else
			appendStringInfo(&sql, "%s = %s", quote_identifier(def->other_cols[c]),
							 action == 'n' ? "NULL" : "DEFAULT");
	}
	appendStringInfo(&sql, " FROM %s WHERE %s RETURNING ", from, match);
	for (int c = 0; c < def->nkeys; c++)
		appendStringInfo(&sql, "%st.%s::%s AS k%d", c > 0 ? ", " : "",
						 quote_identifier(def->other_cols[c]), def->own_types[c], c + 1);
	appendStringInfoString(&sql, ") SELECT DISTINCT ");
	for (int c = 0; c < def->nkeys; c++)
		appendStringInfo(&sql, "%sk%d", c > 0 ? ", " : "", c + 1);
	appendStringInfoString(&sql, " FROM splitdb_acted");
	return sql.data;
}

/*
 * splitdb_refcheck_pin_search_path
 *		Resolve every name of splitdb's statements in pg_catalog, whatever
 *		the session's search_path: the statements run with the owner's
 *		rights.  Returns the GUC nest level to give to AtEOXact_GUC().  Set
 *		once per batch, not in the function's definition, so that row
 *		triggers do not pay for it on every row.
 */
int
splitdb_refcheck_pin_search_path(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * splitdb_refcheck_action_search_path
 *		Set search_path for an action statement (CASCADE, SET NULL, SET
 *		DEFAULT) that writes referencing rows, from base, a search_path
 *		setting: pg_catalog first and pg_temp last, as splitdb's statements
 *		need (they name everything else with its schema), and base's other
 *		schemas between them.  The triggers that the action fires, and the
 *		functions its constraints call, then find what they would find under
 *		PostgreSQL's own foreign key: PostgreSQL runs an action with the
 *		session's search_path.  Returns the GUC nest level to give to
 *		AtEOXact_GUC().
 */
int
splitdb_refcheck_action_search_path(const char *base)
{
	int			nest = NewGUCNestLevel();
	char	   *raw = pstrdup(base ? base : "");
	List	   *names = NIL;
	ListCell   *lc;
	StringInfoData path;

	initStringInfo(&path);
	appendStringInfoString(&path, "pg_catalog");
	/* a setting that does not parse adds nothing: splitdb's path alone */
	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach(lc, names)
		{
			const char *name = lfirst(lc);

			if (strcmp(name, "pg_catalog") == 0 || strcmp(name, "pg_temp") == 0)
				continue;
			appendStringInfo(&path, ", %s", quote_identifier(name));
		}
	}
	appendStringInfoString(&path, ", pg_temp");
	(void) set_config_option("search_path", path.data, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}
