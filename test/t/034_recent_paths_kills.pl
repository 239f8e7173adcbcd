# Copyright (c) 2026, splitdb developers

# Kills and immediate stops in the code paths of the last releases, which
# the older crash tests (010, 012, 013, 028) predate: the copy again after
# a failed verification (it writes in session_replication_role replica and
# empties with DELETE), the resumed offline job that copies again in the
# same run what was written while it was stopped, the offline cutover's
# bounded installs of reference ends in another sibling (55P03), the
# workers' owner_rights sessions, the rollback's replays, finalize and
# splitdb_cancel() under writes.
#
# One cluster (restart_after_crash on, as in production: a SIGKILL of a
# backend restarts every process, and the launcher resumes the jobs); each
# service's sibling is a database of the same cluster, but one's (fr), on
# a second server.  Each service owns
# NAME_a_child (4000 rows, a foreign key ON DELETE CASCADE to the parent, a
# BEFORE INSERT trigger that moves with it, a CHECK calling a function of
# the tables' owner, a role without superuser: with splitdb.owner_rights
# the workers run it as that role) and NAME_b_parent (2000 rows); the
# child sorts first, so a copy again copies it before the table it
# references.  splitdb.batch_rows is 500.  The CHECK's function fails
# wherever splitdb.owner_rights is on and it runs as a superuser: every
# session of the workers, copiers and rollback must run it as its owner,
# in every run after a kill.
#
# The worker is met where the test wants it with the code's test hooks
# (splitdb.migrate_pause_at, splitdb.rollback_pause_at and their advisory
# locks), and with locks the test holds.  Then one of: pg_terminate_backend
# of the working process, its SIGKILL (a crash-restart of the cluster), an
# immediate stop and a start.  Then the DBA's call (splitdb_migrate,
# splitdb_rollback, splitdb_cancel, splitdb_finalize), or the launcher's
# resume after a restart, and the checks:
# - the sibling's tables equal the source's row for row: an ordered digest
#   of every row (md5 of the rows in key order), with the count and the
#   distinct keys, so that nothing is lost, doubled or changed (the moved
#   trigger did not fire again on a copied row);
# - the job's state, runs, phase and last error;
# - after a failure or a cancel: the source's tables are ordinary tables
#   with exactly their rows;
# - no lock of any session but the test's on the service's tables, no
#   advisory lock, no splitdb session left in the sibling;
# - splitdb_doctor() finds nothing.
#
# 1. the copy again after a failed verification (a trigger ENABLE ALWAYS in
#    the sibling changes the parent's rows, then is dropped), stopped after
#    its first batch: rc_term (pg_terminate_backend, then writes to the
#    source while the job is failed: the resumed run copies again once
#    more), rc_kill (SIGKILL), rc_stop (immediate stop); ku: a table
#    without a key (a nullable unique column that the other table's
#    foreign key references), its one batch held by a gate in the sibling,
#    SIGKILL (the resumed run emptied it with a TRUNCATE, refused by that
#    foreign key, 0A000, on every run); pt: a partitioned table that
#    references another table of the service (the copy again's TRUNCATE
#    left it out, and its foreign key refused it, 0A000, on every run),
#    terminated after the first batch; rg: a table copied by key ranges
#    with two readers, held at a gate with checkpoints in both ranges,
#    SIGKILL of the copier, resumed with one reader; on: an online job's
#    copy again written while it waits, SIGKILL; fr: the sibling on a
#    server of its own, stopped (immediate) during the copy again: 08006,
#    the source intact, one call ends the job once it is back;
# 2. a resumed offline job that copies again what was written while it
#    was stopped, stopped in that copy: of_kill (SIGKILL; the launcher
#    resumes it), of_term (pg_terminate_backend, more writes, one call);
# 3. the offline cutover's install of reference ends in another sibling,
#    held by a transaction there: fails with 55P03 after its attempts,
#    lets go of its tables, and the resumed job copies again and cuts
#    over; then, held again, an immediate stop while the install waits;
#    xa/xb: a cancel of a job failed so, the writer still there: its
#    installs in the other sibling give up with 55P03 after their
#    attempts (it waited for the writer for good, and the application's
#    statements queued behind it); qa/qb: a cutover terminated after the
#    other sibling committed its ends (cutover_committing): the other
#    service's keys are checked against the source's table while the job
#    is failed;
# 4. the rollback of rc_term, written through its shims, its worker
#    SIGKILLed while it holds the locks of the switch back; of rc_kill, its
#    worker terminated between the sibling's commit and the source's; of
#    on, SIGKILLed before its cleanup; of rg, stopped immediately holding
#    the switch's locks while a writer through the shim waits for them;
# 5. the finalize of rc_stop, its backend SIGKILLed while it waits for a
#    lock on an archived original; of of_term, SIGKILLed between its
#    commits in the sibling and in the source;
# 6. splitdb_cancel() of an online job copying again, its backend
#    SIGKILLed while its drops in the source wait for a writer; then a
#    cancel that waits for a writer beyond its attempts (55P03, nothing
#    changed in the source), and a last one that ends it.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SplitdbTest qw(start_source poll_until psql_verbose JOB_SUMMARY);

my $parents  = 2000;
my $children = 4000;
my $batch    = 500;
my $migrate_key  = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $rollback_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY

my $node = start_source('source', $batch, "restart_after_crash = on\n");
$node->safe_psql(
	'postgres', q{
CREATE ROLE app_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO app_owner;
});

sub src { return $node->safe_psql('postgres', $_[0]); }
sub sib { return $node->safe_psql($_[0], $_[1]); }

# ---------------------------------------------------------------------------
# the service's tables

sub make_service
{
	my ($svc, $np, $server) = @_;
	$np //= $parents;
	my $add = defined $server ? "'$svc', server => '$server'" : "'$svc'";
	src(qq{
SET ROLE app_owner;
CREATE FUNCTION ${svc}_ok(v text) RETURNS boolean LANGUAGE plpgsql AS
\$\$
BEGIN
	IF coalesce(pg_catalog.current_setting('splitdb.owner_rights', true), 'off') = 'on'
	   AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
		RAISE EXCEPTION 'the check of ${svc} runs as superuser %', current_user;
	END IF;
	RETURN length(v) < 200;
END
\$\$;
CREATE FUNCTION ${svc}_mark() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN NEW.v := NEW.v || '!'; RETURN NEW; END \$\$;
CREATE TABLE ${svc}_b_parent (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE ${svc}_a_child (
	id integer PRIMARY KEY,
	parent_id integer NOT NULL REFERENCES ${svc}_b_parent ON DELETE CASCADE,
	v text NOT NULL CHECK (${svc}_ok(v)));
CREATE TRIGGER ${svc}_mark BEFORE INSERT ON ${svc}_a_child
	FOR EACH ROW EXECUTE FUNCTION ${svc}_mark();
INSERT INTO ${svc}_b_parent SELECT g, 'parent ' || g FROM generate_series(1, $np) g;
INSERT INTO ${svc}_a_child SELECT g, 1 + g % $np, 'child ' || g FROM generate_series(1, $children) g;
RESET ROLE;
SELECT splitdb_add_service($add);
SELECT splitdb_assign('$svc', '${svc}_a_child', '${svc}_b_parent');
});
	return;
}

# In the sibling: a trigger that fires in every session (ENABLE ALWAYS)
# on the parent, made as soon as the job creates the table, which changes
# its rows: the verification fails.
sub sabotage
{
	my ($svc) = @_;
	sib($svc, sabotage_sql($svc));
	return;
}

sub sabotage_sql
{
	my ($svc) = @_;
	return qq{
CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END \$\$;
CREATE FUNCTION public.add_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS
\$\$
BEGIN
	IF pg_catalog.to_regclass('public.${svc}_b_parent') IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage') THEN
			CREATE TRIGGER sabotage BEFORE INSERT ON public.${svc}_b_parent
				FOR EACH ROW EXECUTE FUNCTION public.sabotage();
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage' AND tgenabled <> 'A') THEN
			ALTER TABLE public.${svc}_b_parent ENABLE ALWAYS TRIGGER sabotage;
		END IF;
	END IF;
END
\$\$;
CREATE EVENT TRIGGER add_sabotage ON ddl_command_end EXECUTE FUNCTION public.add_sabotage();
};
}

sub unsabotage
{
	my ($svc) = @_;
	sib($svc, unsabotage_sql($svc));
	return;
}

sub unsabotage_sql
{
	my ($svc) = @_;
	return qq{
DROP EVENT TRIGGER add_sabotage;
DROP TRIGGER IF EXISTS sabotage ON public.${svc}_b_parent;
DROP FUNCTION public.add_sabotage();
DROP FUNCTION public.sabotage();
};
}

# writes of the application to the source's tables (or through the shims)
sub writes
{
	my ($svc, $k) = @_;
	src(qq{
INSERT INTO ${svc}_b_parent VALUES ($k, 'parent new $k');
INSERT INTO ${svc}_a_child VALUES ($k, $k, 'child new $k'), ($k + 1, 7, 'child new ' || $k + 1);
UPDATE ${svc}_b_parent SET v = 'changed $k' WHERE id IN (3, $parents - 3);
UPDATE ${svc}_a_child SET v = 'changed $k' WHERE id IN (5, $children - 5);
DELETE FROM ${svc}_a_child WHERE id = $k % 1000 + 11;
DELETE FROM ${svc}_b_parent WHERE id = $k % 1000 + 13;
});
	return;
}

# ---------------------------------------------------------------------------
# what the checks read

# the ordered digest of every row of a table, with its count and keys
sub digest_sql
{
	my ($table) = @_;
	return "SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' keys, '"
	  . " || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), 'empty')"
	  . " FROM ONLY $table t";
}

# the digests of the service's tables, in $db ('postgres': the source)
# and $schema
sub digests
{
	my ($db, $svc, $schema) = @_;
	$schema //= 'public';
	return join("\n",
		map { "$_: " . sib($db, digest_sql("$schema.${svc}_$_")) } ('a_child', 'b_parent'));
}

sub job
{
	my ($svc, $columns) = @_;
	return src("SELECT $columns FROM splitdb.job WHERE service = '$svc'"
		  . " AND state NOT IN ('cancelled', 'rolled_back') ORDER BY job_id DESC LIMIT 1");
}

sub job_state
{
	my ($svc) = @_;
	return job($svc,
		"CASE WHEN splitdb.job_worker_gone(state, worker_pid) THEN 'failed' ELSE state END");
}

sub summary
{
	my ($svc) = @_;
	return "job of $svc: " . src("SELECT string_agg(" . JOB_SUMMARY
		  . ", '; ' ORDER BY job_id) FROM splitdb.job WHERE service = '$svc'");
}

# wait until the job of $svc no longer runs; returns its state
# wait until the job of $svc no longer runs; returns its state.  Every kill
# here is followed by the launcher's resume or a worker's own record, so
# the row's state is read as it is: a worker that has just ended can read
# as gone (splitdb.job_worker_gone) before its row says done, and a job the
# resumer has marked failed ("the server restarted") is about to run again.
sub wait_job_end
{
	my ($svc) = @_;
	my $state;
	poll_until(
		sub {
			$state = job($svc,
				"CASE WHEN state = 'failed' AND last_error = 'the server restarted while the job was running'"
				  . " THEN 'resuming' ELSE state END");
			$state !~ /^(resuming|queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;
		},
		undef,
		"the job of $svc to end");
	return $state;
}

# the kinds of the relkind of the service's tables in the source
sub relkinds
{
	my ($svc) = @_;
	return src("SELECT string_agg(relkind::text, ' ' ORDER BY relname) FROM pg_class"
		  . " WHERE relnamespace = 'public'::regnamespace AND relname IN ('${svc}_a_child', '${svc}_b_parent')");
}

# locks that other sessions hold on the service's tables, and advisory
# locks, in the source
sub leftover_locks
{
	my ($svc) = @_;
	return src(qq{SELECT count(*) FILTER (WHERE l.locktype = 'relation' AND c.relname LIKE '${svc}\\_%') || ' relation, '
	|| count(*) FILTER (WHERE l.locktype = 'advisory') || ' advisory'
  FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
 WHERE l.pid <> pg_backend_pid()});
}

sub check_clean
{
	my ($svc, $what) = @_;
	my $locks;
	my $deadline = time + 30;
	do { $locks = leftover_locks($svc); usleep(100_000) if $locks ne '0 relation, 0 advisory'; }
	  while ($locks ne '0 relation, 0 advisory' && time < $deadline);
	is($locks, '0 relation, 0 advisory', "$what: no session holds a lock on its tables, no advisory lock");
	is( src(q{SELECT coalesce(string_agg(severity || ' ' || coalesce(service::text, '-') || ' ' || location
	          || ' ' || object || ': ' || problem, '; '), '') FROM splitdb_doctor()}),
		'', "$what: splitdb_doctor() finds nothing");
	return;
}

# the job of $svc is done, and the sibling holds exactly $expected
sub check_done
{
	my ($svc, $expected, $runs, $what) = @_;
	is(job($svc, "state || '|' || phase || '|' || coalesce(last_sqlstate || ' ' || last_error, 'no error')"),
		'done|done|no error', "$what: the job is done, no error left")
	  or diag(summary($svc));
	is(job($svc, 'runs'), $runs, "$what: after $runs runs") if defined $runs;
	is(digests($svc, $svc), $expected, "$what: the sibling holds the source's rows, row for row");
	is(digests('postgres', $svc), $expected, "$what: the shims read them");
	is(digests('postgres', $svc, 'splitdb_archive'), $expected,
		"$what: the archived originals hold them");
	is(relkinds($svc), 'f f', "$what: the source's tables are shims");
	poll_until(
		sub {
			sib($svc, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
				  . " AND application_name = 'splitdb' AND state <> 'idle'") eq '0';
		},
		undef,
		"the sessions of $svc in the sibling");
	is( src("SELECT count(*) FROM splitdb_verify('$svc') WHERE ok"), '2',
		"$what: splitdb_verify agrees");
	check_clean($svc, $what);
	return;
}

# the source of $svc is intact: ordinary tables holding $expected
sub check_source_intact
{
	my ($svc, $expected, $what) = @_;
	is(relkinds($svc), 'r r', "$what: the source's tables are still ordinary tables");
	is(digests('postgres', $svc), $expected, "$what: with exactly their rows");
	return;
}

# ---------------------------------------------------------------------------
# kills

# wait until the launcher has looked for interrupted jobs after a start
sub wait_launcher
{
	my ($offset) = @_;
	$node->wait_for_log(qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/, $offset);
	return;
}

# SIGKILL of $pid, then the crash-restart it causes, and the launcher's look
sub sigkill
{
	my ($pid, $what) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$what: SIGKILL of process $pid");
	$node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->poll_query_until('postgres', 'SELECT true') or die "$what: the server does not come back";
	wait_launcher($offset);
	return $offset;
}

# an immediate stop and a start
sub immediate_stop
{
	my ($what) = @_;
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	wait_launcher($offset);
	pass("$what: the server stopped immediately and started again");
	return $offset;
}

# a session whose server went away
sub forget
{
	my ($bg) = @_;
	eval { $bg->quit; };
	return;
}

# Start a run of the job of $svc (splitdb_migrate with @args) that waits at
# $point while the returned session holds the hook's lock; returns
# (holder, worker's pid).
sub start_paused
{
	my ($svc, $point, $args) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($migrate_key, 0)");
	src("SET splitdb.migrate_pause_at = '$point'; SELECT splitdb_migrate('$svc'$args)");
	my $paused = qq{SELECT a.pid FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
		WHERE j.service = '$svc' AND a.query = 'paused at $point'};
	poll_until(sub { src($paused) ne '' || job_state($svc) !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ },
		undef, "the job of $svc to pause at $point");
	my $pid = src($paused);
	ok($pid ne '', "$svc: the worker waits at $point") or diag(summary($svc));
	return ($holder, $pid);
}

# the rows the copy again has recorded so far, per table
sub copy_progress
{
	my ($svc) = @_;
	return src("SELECT string_agg(jt.table_name || ' ' || jt.phase || ' ' || jt.rows_copied, ', '"
		  . " ORDER BY jt.table_name) FROM splitdb.job_table jt JOIN splitdb.job j USING (job_id)"
		  . " WHERE j.service = '$svc' AND j.state NOT IN ('cancelled', 'rolled_back')");
}

# ---------------------------------------------------------------------------
# 1. the copy again after a failed verification


# A gate in the sibling of service svc: a BEFORE INSERT statement trigger on
# ${svc}_b_parent, ENABLE ALWAYS (kept so by an event trigger, since the
# copy again writes in replica), runs hold_sql, which may wait for the lock
# on public.gate; returns a background session that holds that lock until
# it commits.
sub gate_batches
{
	my ($svc, $hold_sql) = @_;
	sib($svc, qq{
CREATE TABLE public.gate ();
CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS
\$\$
BEGIN
$hold_sql
	RETURN NULL;
END
\$\$;
CREATE TRIGGER zz_gate BEFORE INSERT ON public.${svc}_b_parent
	FOR EACH STATEMENT EXECUTE FUNCTION public.hold();
CREATE FUNCTION public.gate_always() RETURNS event_trigger LANGUAGE plpgsql AS
\$\$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'zz_gate' AND tgenabled <> 'A') THEN
		ALTER TABLE public.${svc}_b_parent ENABLE ALWAYS TRIGGER zz_gate;
	END IF;
END
\$\$;
CREATE EVENT TRIGGER gate_always ON ddl_command_end EXECUTE FUNCTION public.gate_always();
ALTER TABLE public.${svc}_b_parent ENABLE ALWAYS TRIGGER zz_gate;
});
	my $gate = $node->background_psql($svc);
	$gate->query_safe('BEGIN; LOCK TABLE public.gate IN EXCLUSIVE MODE');
	return $gate;
}

sub case_recopy
{
	my ($svc, $kill) = @_;
	make_service($svc);
	sabotage($svc);
	my $before = digests('postgres', $svc);

	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', mode => 'offline', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed for 1 table of service "$svc"/,
		"$svc: the first run fails its verification (22000)");
	is(job($svc, "state || '|' || phase || '|' || last_sqlstate"),
		'failed|copying|22000', "$svc: the job is failed, sent back to copying");
	check_source_intact($svc, $before, "$svc after the failed verification");
	unsabotage($svc);

	my ($holder, $pid) = start_paused($svc, 'copying', '');
	is(copy_progress($svc),
		"public.${svc}_a_child copying $batch, public.${svc}_b_parent created 0",
		"$svc: the copy again stopped after its first batch of the child, in replica");
	is(sib($svc, "SELECT count(*) FROM public.${svc}_a_child WHERE v LIKE '%!!'"),
		'0', "$svc: the moved trigger did not fire on the rows copied again");

	my $expected = $before;
	if ($kill eq 'term')
	{
		src("SELECT pg_terminate_backend($pid)");
		is(wait_job_end($svc), 'failed', "$svc: the terminated job is failed");
		is(job($svc, 'last_sqlstate'), '57P01', "$svc: with 57P01");
		$holder->quit;
		check_source_intact($svc, $before, "$svc after the terminate");
		# the tables are open to writes while the job is failed
		writes($svc, 100000);
		$expected = digests('postgres', $svc);
		($ret, $out, $err) = psql_verbose($node, 'postgres',
			"SELECT splitdb_migrate('$svc', wait => true);");
		is($ret, 0, "$svc: one splitdb_migrate() resumes the job to done") or diag($err);
		check_done($svc, $expected, 3, $svc);
	}
	else
	{
		my $offset = $kill eq 'kill' ? sigkill($pid, $svc) : immediate_stop($svc);
		forget($holder);
		ok($node->log_contains(qr/resuming job \d+ of service "$svc" after a restart/, $offset),
			"$svc: the launcher resumes the job") or diag(summary($svc));
		is(wait_job_end($svc), 'done', "$svc: the resumed job ends done") or diag(summary($svc));
		check_done($svc, $expected, 3, $svc);
	}
	is(sib($svc, "SELECT count(*) FROM public.${svc}_a_child WHERE v LIKE '%!!'"),
		'0', "$svc: no child row went through the moved trigger twice");
	return;
}

case_recopy('rc_term', 'term');
case_recopy('rc_kill', 'kill');
case_recopy('rc_stop', 'stop');

# The copy again of a table without a key (a nullable unique column, which
# a foreign key of the other table references): a gate in the sibling holds
# its one batch; SIGKILL of the worker.  The resumed run empties it again
# without a TRUNCATE, which the sibling's foreign key refuses (0A000).
{
	my $svc = 'ku';
	src(qq{
CREATE TABLE ${svc}_b_parent (code text UNIQUE, v text NOT NULL);
CREATE TABLE ${svc}_a_child (
	id integer PRIMARY KEY,
	parent_code text REFERENCES ${svc}_b_parent (code),
	v text NOT NULL);
INSERT INTO ${svc}_b_parent SELECT 'c' || g, 'parent ' || g FROM generate_series(1, 300) g;
INSERT INTO ${svc}_b_parent VALUES (NULL, 'no code'), (NULL, 'no code either');
INSERT INTO ${svc}_a_child SELECT g, 'c' || (1 + g % 300), 'child ' || g FROM generate_series(1, 900) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_a_child', '${svc}_b_parent');
});
	sabotage($svc);
	my $digest = sub {
		my ($db, $schema) = @_;
		return sib($db,
			"SELECT (SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ONLY $schema.${svc}_b_parent t)"
			  . " || ' / ' || (" . digest_sql("$schema.${svc}_a_child") . ')');
	};
	my $before = $digest->('postgres', 'public');
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', mode => 'offline', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/,
		"$svc: the first run fails its verification (22000)");
	unsabotage($svc);
	my $gate = gate_batches($svc, 'LOCK TABLE public.gate IN SHARE MODE;');
	src("SELECT splitdb_migrate('$svc')");
	my $waiting = q{SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'public.gate'::regclass};
	poll_until(sub { sib($svc, $waiting) eq '1' || job_state($svc) !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ },
		undef, "the copy of ${svc}_b_parent at the gate");
	is(copy_progress($svc), "public.${svc}_a_child copied 900, public.${svc}_b_parent copying 0",
		"$svc: the copy again waits in its batch of the table without a key, its foreign key there")
	  or diag(summary($svc));
	my $offset = sigkill(job($svc, 'worker_pid'), $svc);
	forget($gate);
	sib($svc, "DROP EVENT TRIGGER gate_always; DROP TRIGGER zz_gate ON public.${svc}_b_parent");
	ok($node->log_contains(qr/resuming job \d+ of service "$svc" after a restart/, $offset),
		"$svc: the launcher resumes the job");
	is(wait_job_end($svc), 'done', "$svc: the resumed job ends done") or diag(summary($svc));
	is(job($svc, "coalesce(last_sqlstate || ' ' || last_error, 'no error')"), 'no error',
		"$svc: no error left");
	is($digest->($svc, 'public'), $before, "$svc: the sibling holds the source's rows, row for row");
	is($digest->('postgres', 'splitdb_archive'), $before, "$svc: the archived originals hold them");
	check_clean($svc, $svc);
}

# The copy again of a service whose partitioned table references another
# of its tables: the copy again empties them all with one TRUNCATE, which
# the sibling's foreign key on the partitioned table refused (0A000) on
# every run, unless that table is in it too; then pg_terminate_backend
# after its first batch, and one call ends the job.
{
	my $svc = 'pt';
	src(qq{
CREATE TABLE ${svc}_b_parent (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE ${svc}_a_child (
	id integer NOT NULL,
	parent_id integer NOT NULL REFERENCES ${svc}_b_parent,
	v text NOT NULL,
	PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE ${svc}_a_child_1 PARTITION OF ${svc}_a_child FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE ${svc}_a_child_2 PARTITION OF ${svc}_a_child FOR VALUES FROM (1000) TO (MAXVALUE);
INSERT INTO ${svc}_b_parent SELECT g, 'parent ' || g FROM generate_series(1, 700) g;
INSERT INTO ${svc}_a_child SELECT g, 1 + g % 700, 'child ' || g FROM generate_series(1, 2000) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_a_child', '${svc}_b_parent');
});
	sabotage($svc);
	# the rows of the partitioned table through its root
	my $digests = sub {
		my ($db, $schema) = @_;
		return join("\n",
			map { (my $sql = digest_sql("$schema.${svc}_$_")) =~ s/FROM ONLY /FROM /; "$_: " . sib($db, $sql) }
			  ('a_child', 'b_parent'));
	};
	my $before = $digests->('postgres', 'public');
	like($before, qr/^a_child: 2000 rows, 2000 keys/, "$svc: the digest reads the partitions");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', mode => 'offline', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/,
		"$svc: the first run fails its verification (22000)");
	unsabotage($svc);
	my ($holder, $pid) = start_paused($svc, 'copying', '');
	src("SELECT pg_terminate_backend($pid)");
	is(wait_job_end($svc), 'failed', "$svc: the job terminated in its copy again is failed");
	is(job($svc, 'last_sqlstate'), '57P01', "$svc: with 57P01") or diag(summary($svc));
	$holder->quit;
	is(relkinds($svc), 'p r', "$svc after the terminate: the source's tables are still its tables");
	is($digests->('postgres', 'public'), $before, "$svc after the terminate: with exactly their rows");
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('$svc', wait => true);");
	is($ret, 0, "$svc: one splitdb_migrate() resumes the job to done") or diag($err);
	is(job($svc, "state || '|' || coalesce(last_sqlstate || ' ' || last_error, 'no error')"), 'done|no error',
		"$svc: the job is done");
	is($digests->($svc, 'public'), $before, "$svc: the sibling holds the source's rows, row for row");
	is($digests->('postgres', 'splitdb_archive'), $before, "$svc: the archived originals hold them");
	is($digests->('postgres', 'public'), $before, "$svc: the shims read them");
	check_clean($svc, $svc);
}

# The copy again of a table large enough for key ranges, with two readers
# (the worker and a copier, each in replica): a gate in the sibling (a
# statement trigger ENABLE ALWAYS) holds both once the parent holds 20000
# rows, with checkpoints in both ranges; SIGKILL of the copier.  The
# launcher resumes the job with the server's one reader, which copies what
# is left of both ranges.
{
	my $svc = 'rg';
	make_service($svc, 120000);
	sabotage($svc);
	my $before = digests('postgres', $svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SET splitdb.copy_readers = 2;\nSELECT splitdb_migrate('$svc', mode => 'offline', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/,
		"$svc: the first run, with two readers, fails its verification (22000)");
	unsabotage($svc);
	my $gate = gate_batches($svc, qq{
	IF (SELECT count(*) FROM public.${svc}_b_parent) >= 20000 THEN
		LOCK TABLE public.gate IN SHARE MODE;
	END IF;
});
	src("SET splitdb.copy_readers = 2; SELECT splitdb_migrate('$svc')");
	my $waiting = q{SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'public.gate'::regclass};
	poll_until(sub { sib($svc, $waiting) eq '2' || job_state($svc) !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ },
		undef, "both readers of $svc at the gate");
	is(sib($svc, $waiting), '2', "$svc: both readers of the copy again wait at the gate")
	  or diag(summary($svc));
	is( src("SELECT count(*) || ' ranges, ' || count(*) FILTER (WHERE rows_copied > 0 AND NOT done) || ' under way'"
			  . " FROM splitdb.job_range r JOIN splitdb.job j USING (job_id) WHERE j.service = '$svc'"),
		'2 ranges, 2 under way', "$svc: the parent's two ranges have checkpoints");
	my $copier = src("SELECT pid FROM pg_stat_activity WHERE backend_type = 'splitdb copier'");
	my $offset = sigkill($copier, "$svc copier");
	forget($gate);
	ok($node->log_contains(qr/resuming job \d+ of service "$svc" after a restart/, $offset),
		"$svc: the launcher resumes the job");
	is(wait_job_end($svc), 'done', "$svc: the resumed job ends done") or diag(summary($svc));
	ok( $node->log_contains(
			qr/job \d+ of service "$svc" copies table public.${svc}_b_parent in 2 ranges \(2 to go\) with 1 reader/,
			$offset),
		"$svc: the resumed run copies what is left of both ranges, alone");
	sib($svc, "DROP EVENT TRIGGER gate_always; DROP TRIGGER zz_gate ON public.${svc}_b_parent");
	check_done($svc, $before, 3, $svc);
}

# An online job's copy again, written meanwhile through its capture: the
# application writes while the worker waits after the first batch; SIGKILL;
# the launcher resumes it, and the catch-up brings the sibling to the
# source.  (Writes after the restart could land after the cutover, in the
# sibling alone.)
{
	my $svc = 'on';
	make_service($svc);
	sabotage($svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('$svc', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/,
		"$svc: the online job fails its verification (22000)");
	unsabotage($svc);
	my ($holder, $pid) = start_paused($svc, 'copying', '');
	writes($svc, 800000);
	writes($svc, 810000);
	my $offset = sigkill($pid, $svc);
	forget($holder);
	ok($node->log_contains(qr/resuming job \d+ of service "$svc" after a restart/, $offset),
		"$svc: the launcher resumes the job");
	is(wait_job_end($svc), 'done', "$svc: the resumed job ends done") or diag(summary($svc));
	check_done($svc, digests('postgres', $svc, 'splitdb_archive'), 3, $svc);
}

# The copy again with the sibling on a server of its own, which stops
# (immediate) while the worker waits after the first batch: the job fails
# with 08006 and the source keeps its rows; once the sibling is back, the
# resumed run's new connections write in replica again, and one call ends
# the job.
# (it stays up to the end: the doctor reaches every sibling)
my $far = PostgreSQL::Test::Cluster->new('far');
{
	my $svc = 'fr';
	$far->init;
	$far->start;
	$far->safe_psql('postgres', "CREATE ROLE app_owner NOLOGIN; CREATE DATABASE $svc");
	$far->safe_psql($svc, 'GRANT CREATE ON SCHEMA public TO app_owner');
	my ($host, $port, $user) = ($far->host, $far->port, src('SELECT current_user'));
	src(qq{
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv OPTIONS (user '$user');
});
	# the service's tables, as make_service makes them, on that sibling
	make_service($svc, undef, "${svc}_srv");
	my $far_sib = sub { $far->safe_psql($svc, $_[0]) };
	$far_sib->(sabotage_sql($svc));
	my $before = digests('postgres', $svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', mode => 'offline', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/,
		"$svc: the first run fails its verification (22000)");
	$far_sib->(unsabotage_sql($svc));
	my ($holder, $pid) = start_paused($svc, 'copying', '');
	$far->stop('immediate');
	$holder->query_safe("SELECT pg_advisory_unlock($migrate_key, 0)");
	is(wait_job_end($svc), 'failed', "$svc: the job is failed once its sibling stopped");
	like(job($svc, "last_sqlstate || ' ' || last_error"), qr/^08006 lost the connection to the sibling of service "$svc"/,
		"$svc: lost the connection to the sibling (08006)");
	$holder->quit;
	check_source_intact($svc, $before, "$svc after its sibling stopped");
	$far->start;
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('$svc', wait => true);");
	is($ret, 0, "$svc: one splitdb_migrate() resumes the job to done") or diag($err);
	is(job($svc, "state || '|' || coalesce(last_error, 'no error')"), 'done|no error', "$svc: the job is done");
	is(join("\n", map { "$_: " . $far_sib->(digest_sql("public.${svc}_$_")) } ('a_child', 'b_parent')),
		$before, "$svc: the sibling holds the source's rows, row for row");
	is(digests('postgres', $svc, 'splitdb_archive'), $before, "$svc: the archived originals hold them");
	is($far_sib->("SELECT count(*) FROM public.${svc}_a_child WHERE v LIKE '%!!'"),
		'0', "$svc: no child row went through the moved trigger twice");
	check_clean($svc, $svc);
}

# ---------------------------------------------------------------------------
# 2. a resumed offline job copies again what was written while it was stopped

sub case_offline_resume
{
	my ($svc, $kill) = @_;
	make_service($svc);

	my ($holder, $pid) = start_paused($svc, 'cutover', ", mode => 'offline'");
	src("SELECT pg_terminate_backend($pid)");
	is(wait_job_end($svc), 'failed', "$svc: the job terminated before its cutover is failed");
	$holder->quit;
	writes($svc, 200000);
	my $expected = digests('postgres', $svc);

	# the resumed run finds the tables written, and copies them again
	my $offset = -s $node->logfile;
	($holder, $pid) = start_paused($svc, 'copying', '');
	ok( $node->log_contains(
			qr/job \d+ of service "$svc": 2 tables changed while the job was stopped; its tables are copied again/,
			$offset),
		"$svc: the resumed run copies again the tables written while it was stopped");
	if ($kill eq 'kill')
	{
		$offset = sigkill($pid, $svc);
		forget($holder);
		ok($node->log_contains(qr/resuming job \d+ of service "$svc" after a restart/, $offset),
			"$svc: the launcher resumes the job");
		is(wait_job_end($svc), 'done', "$svc: the resumed job ends done") or diag(summary($svc));
		check_done($svc, $expected, 3, $svc);
		return;
	}
	src("SELECT pg_terminate_backend($pid)");
	is(wait_job_end($svc), 'failed', "$svc: the job terminated in its copy again is failed");
	$holder->quit;
	check_source_intact($svc, $expected, "$svc after the terminate in the copy again");
	writes($svc, 300000);
	$expected = digests('postgres', $svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', wait => true);");
	is($ret, 0, "$svc: one splitdb_migrate() resumes the job to done") or diag($err);
	check_done($svc, $expected, 3, $svc);
	return;
}

case_offline_resume('of_kill', 'kill');
case_offline_resume('of_term', 'term');

# ---------------------------------------------------------------------------
# 3. the offline cutover's install of reference ends in another sibling

{
	# pa_ca, migrated first, refers to pb_pb, which service pb takes
	src(q{
CREATE TABLE pb_pb (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO pb_pb SELECT g, 'pb ' || g FROM generate_series(1, 1500) g;
CREATE TABLE pa_ca (id integer PRIMARY KEY, pb_id integer REFERENCES pb_pb);
INSERT INTO pa_ca SELECT g, 1 + g % 1500 FROM generate_series(1, 300) g;
SELECT splitdb_add_service('pa');
SELECT splitdb_add_service('pb');
SELECT splitdb_assign('pa', 'pa_ca');
SELECT splitdb_assign('pb', 'pb_pb');
SELECT splitdb_migrate('pa', mode => 'offline', wait => true);
});
	my $pb_digest = sub { sib($_[0], digest_sql("$_[1]pb_pb")) };
	my $before = $pb_digest->('postgres', 'public.');

	# a transaction of the application's writes pa_ca through its shim,
	# holding it in pa's sibling
	my $w = $node->background_psql('postgres', on_error_stop => 0);
	$w->query_safe("BEGIN; INSERT INTO pa_ca VALUES (10001, NULL)");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', q{
SET splitdb.cutover_lock_timeout = 200;
SET splitdb.cutover_attempts = 2;
SELECT splitdb_migrate('pb', mode => 'offline', wait => true);});
	like($err, qr/55P03: migration of service "pb" failed: could not install the cross-service references of service "pb" in 2 attempts/,
		'pb: the offline cutover fails with 55P03 after its attempts');
	is(job('pb', "state || '|' || last_sqlstate"), 'failed|55P03', 'pb: the job is failed with 55P03');
	is(src("SELECT relkind::text FROM pg_class WHERE oid = 'public.pb_pb'::regclass"),
		'r', 'pb: pb_pb is still an ordinary table');
	is($pb_digest->('postgres', 'public.'), $before, 'pb: with exactly its rows');

	# the job let go of pb_pb: the writer goes on and commits
	$w->query_safe("SET lock_timeout = '5s'; INSERT INTO pb_pb VALUES (10001, 'written'); COMMIT");
	$w->quit;
	pass('pb: the writer held in the other sibling writes pb_pb and commits');
	check_clean('pb', 'pb after its 55P03');

	# held again, with a long wait: an immediate stop while it waits there
	# (holding pb_pb: its rows are read before)
	my $expected = $pb_digest->('postgres', 'public.');
	$w = $node->background_psql('postgres', on_error_stop => 0);
	$w->query_safe("BEGIN; INSERT INTO pa_ca VALUES (10002, NULL)");
	src(q{SET splitdb.cutover_lock_timeout = 600000; SET splitdb.cutover_attempts = 1;
SELECT splitdb_migrate('pb');});
	poll_until(
		sub {
			sib('pa', q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'pa'
				AND wait_event_type = 'Lock' AND query LIKE '%install_reference_ends%'}) ne '0'
			  || job_state('pb') !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;
		},
		undef,
		'the install in pa to wait');
	is(job('pb', 'state'), 'cutting_over', 'pb: the resumed job waits in the other sibling, cutting over')
	  or diag(summary('pb'));
	my $offset = immediate_stop('pb waiting in pa');
	forget($w);
	ok($node->log_contains(qr/resuming job \d+ of service "pb" after a restart/, $offset),
		'pb: the launcher resumes the job');
	is(wait_job_end('pb'), 'done', 'pb: the resumed job ends done') or diag(summary('pb'));
	is($pb_digest->('pb', 'public.'), $expected, 'pb: the sibling holds the rows, the one written while it was failed included');
	is($pb_digest->('postgres', 'splitdb_archive.'), $expected, 'pb: the archived original holds them');
	is(sib('pa', 'SELECT count(*) FROM pa_ca WHERE id IN (10001, 10002)'), '1',
		'pa: the committed write is there, the one the stop cut short is not');
	my ($r2, $o2, $e2) = psql_verbose($node, 'postgres', 'INSERT INTO pa_ca VALUES (10003, 999999);');
	like($e2, qr/23503/, 'pa: a row of pa_ca referencing no row of pb_pb is refused (23503)');
	src('INSERT INTO pa_ca VALUES (10004, 10001)');
	pass('pa: a row referencing the row written while pb was failed is taken');
	check_clean('pb', 'pb done');
}

# A cancel of an offline job failed with 55P03 in its cutover, while the
# writer in the other sibling still holds its table: the cancel installs
# the ends there again, each try waiting at most its
# splitdb.cutover_lock_timeout, so no statement of the application waits
# behind it for longer, and it fails with 55P03 after its attempts,
# changing nothing here; once the writer is gone, the next cancel ends it.
{
	src(q{
CREATE TABLE xb_xb (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO xb_xb SELECT g, 'xb ' || g FROM generate_series(1, 500) g;
CREATE TABLE xa_ca (id integer PRIMARY KEY, xb_id integer REFERENCES xb_xb);
INSERT INTO xa_ca SELECT g, 1 + g % 500 FROM generate_series(1, 100) g;
SELECT splitdb_add_service('xa');
SELECT splitdb_add_service('xb');
SELECT splitdb_assign('xa', 'xa_ca');
SELECT splitdb_assign('xb', 'xb_xb');
SELECT splitdb_migrate('xa', mode => 'offline', wait => true);
});
	my $before = sib('postgres', digest_sql('public.xb_xb'));
	my $w = $node->background_psql('postgres', on_error_stop => 0);
	$w->query_safe("BEGIN; INSERT INTO xa_ca VALUES (10001, NULL)");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', q{
SET splitdb.cutover_lock_timeout = 200;
SET splitdb.cutover_attempts = 2;
SELECT splitdb_migrate('xb', mode => 'offline', wait => true);});
	like($err, qr/55P03: migration of service "xb" failed: could not install/,
		'xb: the offline cutover fails with 55P03, the writer holding xa_ca');
	($ret, $out, $err) = psql_verbose($node, 'postgres', q{
SET statement_timeout = '30s';
SET splitdb.cutover_lock_timeout = 200;
SET splitdb.cutover_attempts = 2;
SELECT splitdb_cancel('xb');});
	like($err,
		qr/55P03: could not install again in the other siblings the cross-service references of service "xb" in 2 attempts/,
		'xb: a cancel while the writer holds xa_ca gives up with 55P03, not waiting for it');
	is(job('xb', 'state'), 'failed', 'xb: the job is still failed');
	is(src("SELECT relkind::text FROM pg_class WHERE oid = 'public.xb_xb'::regclass"),
		'r', 'xb: xb_xb is an ordinary table');
	is(sib('postgres', digest_sql('public.xb_xb')), $before, 'xb: with exactly its rows');
	$w->query_safe('COMMIT');
	$w->quit;
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_cancel('xb');");
	is($ret, 0, 'xb: once the writer is gone, the cancel ends the job') or diag($err);
	is(src("SELECT state FROM splitdb.job WHERE service = 'xb'"), 'cancelled', 'xb: cancelled');
	($ret, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO xa_ca VALUES (10002, 999999);');
	like($err, qr/23503/, 'xa: a row of xa_ca referencing no row of xb_xb is refused (23503)');
	src('INSERT INTO xb_xb VALUES (999, \'new\'); INSERT INTO xa_ca VALUES (10003, 999)');
	pass('xa: a row referencing a new row of the source\'s xb_xb is taken');
	check_clean('xb', 'xb cancelled');
}

# A cutover stopped after the other sibling committed its ends (the
# cutover_committing hook), by pg_terminate_backend: the job is failed and
# its table the source's again, so the other sibling's ends check it there
# (a row deleted in the source is no longer referenced; a row added there is)
# until a run cuts over again.
{
	src(q{
CREATE TABLE qb_qb (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO qb_qb SELECT g, 'qb ' || g FROM generate_series(1, 1500) g;
CREATE TABLE qa_ca (id integer PRIMARY KEY, qb_id integer REFERENCES qb_qb);
INSERT INTO qa_ca SELECT g, 1 + g % 1500 FROM generate_series(1, 300) g;
SELECT splitdb_add_service('qa');
SELECT splitdb_add_service('qb');
SELECT splitdb_assign('qa', 'qa_ca');
SELECT splitdb_assign('qb', 'qb_qb');
SELECT splitdb_migrate('qa', mode => 'offline', wait => true);
});
	my ($holder, $pid) = start_paused('qb', 'cutover_committing', ", mode => 'offline'");
	src("SELECT pg_terminate_backend($pid)");
	is(wait_job_end('qb'), 'failed', 'qb: the job terminated with its cutover half committed is failed');
	$holder->quit;
	is(src("SELECT relkind::text FROM pg_class WHERE oid = 'public.qb_qb'::regclass"),
		'r', 'qb: qb_qb is the source\'s table again');

	# the application writes qb_qb in the source, and qa_ca in qa's sibling
	src("DELETE FROM qb_qb WHERE id = 1400; INSERT INTO qb_qb VALUES (5000, 'new')");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO qa_ca VALUES (20000, 1400);');
	like($err, qr/23503/, 'qa: a row referencing a row deleted from the source is refused (23503)');
	($ret, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO qa_ca VALUES (20001, 5000);');
	is($ret, 0, 'qa: a row referencing a row added in the source is taken') or diag($err);
	is(src('SELECT count(*) FROM qa_ca c WHERE NOT EXISTS (SELECT FROM qb_qb b WHERE b.id = c.qb_id)'),
		'0', 'qa: no row of qa_ca lacks its row of qb_qb');

	my $expected = sib('postgres', digest_sql('public.qb_qb'));
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('qb', wait => true);");
	is($ret, 0, 'qb: one splitdb_migrate() resumes the job to done') or diag($err);
	is(sib('qb', digest_sql('public.qb_qb')), $expected, 'qb: the sibling holds the source\'s rows');
	is(src('SELECT count(*) FROM qa_ca c WHERE NOT EXISTS (SELECT FROM qb_qb b WHERE b.id = c.qb_id)'),
		'0', 'qa: still no row of qa_ca without its row of qb_qb');
	($ret, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO qa_ca VALUES (20002, 1400);');
	like($err, qr/23503/, 'qa: after the cutover, a row referencing no row of qb_qb is refused (23503)');
	check_clean('qb', 'qb done');
}

# ---------------------------------------------------------------------------
# 4. the rollback, its replays into the archived originals

# start the rollback of $svc that pauses at $point; returns (holder,
# caller, worker's pid)
sub start_rollback_paused
{
	my ($svc, $point) = @_;
	my $id = job($svc, 'job_id');
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($rollback_key, $id)");
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = '$point'");
	$caller->{stdin} .= "SELECT splitdb_rollback('$svc');\n\\echo caller done\n";
	$caller->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at $point'", '1')
	  or die "the rollback of $svc does not pause at $point";
	return ($holder, $caller, src("SELECT pid FROM pg_stat_activity WHERE query = 'paused at $point'"));
}

sub check_rolled_back
{
	my ($svc, $expected, $what) = @_;
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc' ORDER BY job_id DESC LIMIT 1"),
		'rolled_back', "$what: the job is rolled_back");
	is(relkinds($svc), 'r r', "$what: the source's tables are the originals again");
	is(digests('postgres', $svc), $expected,
		"$what: they hold the sibling's rows, row for row, every write replayed once");
	is(sib($svc, "SELECT count(*) FROM pg_class WHERE relname LIKE '${svc}\\_%' AND relkind = 'r'"),
		'0', "$what: the sibling's tables are gone");
	check_clean($svc, $what);
	return;
}

{
	my $svc = 'rc_term';
	writes($svc, 400000);
	my ($holder, $caller, $pid) = start_rollback_paused($svc, 'locked');
	sigkill($pid, "$svc rollback");
	forget($holder);
	forget($caller);
	is(job($svc, 'state'), 'done', "$svc: the killed rollback left the job done");
	is(relkinds($svc), 'f f', "$svc: and the shims in place");
	writes($svc, 500000);
	my $expected = digests($svc, $svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$svc');");
	is($ret, 0, "$svc: splitdb_rollback() called again finishes") or diag($err);
	check_rolled_back($svc, $expected, "$svc rolled back");
}

{
	my $svc = 'rc_kill';
	writes($svc, 400000);
	my $expected = digests($svc, $svc);
	my ($holder, $caller, $pid) = start_rollback_paused($svc, 'between_commits');
	src("SELECT pg_terminate_backend($pid)");
	$caller->query_until(qr/caller done/, '');
	like($caller->{stderr}, qr/rollback of service "$svc" failed/,
		"$svc: the call reports the terminated worker");
	$holder->quit;
	$caller->quit;
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$svc');");
	is($ret, 0, "$svc: splitdb_rollback() called again finishes") or diag($err);
	check_rolled_back($svc, $expected, "$svc rolled back");
}

# The rollback of on, SIGKILLed before its cleanup of the sibling (the
# source restored and committed); of rg, stopped immediately while it holds
# the locks of the switch back and a writer through the shim waits for
# them: the writer's transaction is lost with the stop, nothing else.
{
	my $svc = 'on';
	writes($svc, 820000);
	my $expected = digests($svc, $svc);
	my ($holder, $caller, $pid) = start_rollback_paused($svc, 'before_cleanup');
	sigkill($pid, "$svc rollback");
	forget($holder);
	forget($caller);
	is(relkinds($svc), 'r r', "$svc: the killed rollback had switched the tables back");
	is(digests('postgres', $svc), $expected, "$svc: with the sibling's rows");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$svc');");
	is($ret, 0, "$svc: splitdb_rollback() called again cleans the sibling") or diag($err);
	check_rolled_back($svc, $expected, "$svc rolled back");
}

{
	my $svc = 'rg';
	writes($svc, 830000);
	my $expected = digests($svc, $svc);
	my ($holder, $caller, $pid) = start_rollback_paused($svc, 'locked');
	my $w = $node->background_psql('postgres', on_error_stop => 0);
	my $wpid = $w->query_safe('SELECT pg_backend_pid()');
	$w->{stdin} .= "INSERT INTO ${svc}_b_parent VALUES (990001, 'waits for the switch');\n";
	$w->{run}->pump_nb;
	$node->poll_query_until('postgres', "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $wpid", 'Lock')
	  or die 'the writer does not wait for the switch';
	pass("$svc: a write through the shim waits for the switch's locks");
	immediate_stop("$svc rollback holding its locks");
	forget($_) for ($holder, $caller, $w);
	is(job($svc, 'state'), 'done', "$svc: the stopped rollback left the job done");
	is(relkinds($svc), 'f f', "$svc: and the shims in place");
	is(digests($svc, $svc), $expected, "$svc: the sibling lost nothing, the waiting write is nowhere");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$svc');");
	is($ret, 0, "$svc: splitdb_rollback() called again finishes") or diag($err);
	check_rolled_back($svc, $expected, "$svc rolled back");
}

# ---------------------------------------------------------------------------
# 5. finalize, killed while it waits for a lock on an archived original

{
	my $svc = 'rc_stop';
	writes($svc, 600000);
	my $expected = digests($svc, $svc);
	my $archived = digests('postgres', $svc, 'splitdb_archive');
	my $reader = $node->background_psql('postgres');
	$reader->query_safe("BEGIN; SELECT count(*) FROM splitdb_archive.${svc}_b_parent");
	my $fin = $node->background_psql('postgres', on_error_stop => 0);
	my $fpid = $fin->query_safe('SELECT pg_backend_pid()');
	$fin->{stdin} .= "SELECT splitdb_finalize('$svc');\n\\echo finalize done\n";
	$fin->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT wait_event_type FROM pg_stat_activity WHERE pid = $fpid", 'Lock')
	  or die 'the finalize does not wait for the lock';
	sigkill($fpid, "$svc finalize");
	forget($reader);
	forget($fin);
	is(job($svc, 'state'), 'done', "$svc: the killed finalize left the job done");
	is(digests('postgres', $svc, 'splitdb_archive'), $archived,
		"$svc: and the archived originals intact");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_finalize('$svc');");
	is($ret, 0, "$svc: splitdb_finalize() called again finishes") or diag($err);
	is(job($svc, 'state'), 'finalized', "$svc: the job is finalized");
	is(digests($svc, $svc), $expected, "$svc: the sibling kept its rows");
	is(digests('postgres', $svc), $expected, "$svc: the shims read them");
	is(src("SELECT count(*) FROM pg_class WHERE relnamespace = 'splitdb_archive'::regnamespace"
			  . " AND relname LIKE '${svc}\\_%'"),
		'0', "$svc: the archived originals are gone");
	check_clean($svc, "$svc finalized");
}

# The finalize of of_term killed between its two commits: a writer's open
# transaction through a shim holds the sibling's table, so the finalize's
# drops there wait; a reader holds an archived original; the writer
# commits, the sibling's drops commit, and the source's wait for the
# reader: SIGKILL.  The job is still done, its archive intact; a second
# finalize ends it.
{
	my $svc = 'of_term';
	my $archived = digests('postgres', $svc, 'splitdb_archive');
	my $w = $node->background_psql('postgres');
	$w->query_safe("BEGIN; INSERT INTO ${svc}_b_parent VALUES (900001, 'written while finalizing')");
	my $fin = $node->background_psql('postgres', on_error_stop => 0);
	my $fpid = $fin->query_safe('SELECT pg_backend_pid()');
	$fin->{stdin} .= "SELECT splitdb_finalize('$svc');\n\\echo finalize done\n";
	$fin->{run}->pump_nb;
	poll_until(
		sub {
			sib($svc, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
				  . " WHERE NOT l.granted AND a.application_name = 'splitdb'") ne '0';
		},
		undef,
		"the finalize's drops in the sibling of $svc to wait");
	my $reader = $node->background_psql('postgres');
	$reader->query_safe("SET lock_timeout = '10s'; BEGIN; SELECT count(*) FROM splitdb_archive.${svc}_b_parent");
	$w->query_safe('COMMIT');
	$w->quit;
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $fpid AND NOT granted AND locktype = 'relation'", '1')
	  or die 'the finalize does not wait in the source';
	pass("$svc: the finalize's drops committed in the sibling, those in the source wait");
	sigkill($fpid, "$svc finalize");
	forget($reader);
	forget($fin);
	is(job($svc, 'state'), 'done', "$svc: the finalize killed between its commits left the job done");
	is(digests('postgres', $svc, 'splitdb_archive'), $archived, "$svc: its archived originals intact");
	my $expected = digests($svc, $svc);
	is(digests('postgres', $svc), $expected, "$svc: the shims read the sibling's rows");
	is(sib($svc, "SELECT count(*) FROM ${svc}_b_parent WHERE id = 900001"), '1',
		"$svc: the writer's row is in the sibling, once");
	my ($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_finalize('$svc');");
	is($ret, 0, "$svc: splitdb_finalize() called again finishes") or diag($err);
	is(job($svc, 'state'), 'finalized', "$svc: the job is finalized");
	is(digests($svc, $svc), $expected, "$svc: the sibling kept its rows");
	is(src("SELECT count(*) FROM pg_class WHERE relnamespace = 'splitdb_archive'::regnamespace"
			  . " AND relname LIKE '${svc}\\_%'"),
		'0', "$svc: the archived originals are gone");
	check_clean($svc, "$svc finalized");
}

# ---------------------------------------------------------------------------
# 6. splitdb_cancel() of an online job copying again, killed while it waits

{
	my $svc = 'cn';
	make_service($svc);
	sabotage($svc);
	my ($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SELECT splitdb_migrate('$svc', wait => true);");
	like($err, qr/22000: migration of service "$svc" failed: verification failed/, "$svc: the online job fails its verification (22000)");
	unsabotage($svc);
	my ($holder, $pid) = start_paused($svc, 'copying', '');
	# online: the application writes while the job copies again
	writes($svc, 700000);
	my $expected = digests('postgres', $svc);
	my $w = $node->background_psql('postgres', on_error_stop => 0);
	$w->query_safe("BEGIN; UPDATE ${svc}_b_parent SET v = 'uncommitted' WHERE id = 100");
	my $c = $node->background_psql('postgres', on_error_stop => 0);
	my $cpid = $c->query_safe('SELECT pg_backend_pid()');
	$c->query_safe('SET splitdb.cutover_lock_timeout = 600000; SET splitdb.cutover_attempts = 1');
	$c->{stdin} .= "SELECT splitdb_cancel('$svc');\n\\echo cancel done\n";
	$c->{run}->pump_nb;
	$holder->query_safe("SELECT pg_advisory_unlock($migrate_key, 0)");
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $cpid AND NOT granted AND locktype = 'relation'"
		  . " AND relation = '${svc}_b_parent'::regclass", '1')
	  or die 'the cancel does not wait for the writer';
	pass("$svc: the cancel's drops in the source wait for the writer");
	sigkill($cpid, "$svc cancel");
	forget($_) for ($holder, $w, $c);
	usleep(500_000);
	is(job_state($svc), 'failed', "$svc: the killed cancel left the job failed, not resumed")
	  or diag(summary($svc));
	is(job($svc, 'last_sqlstate'), '57014', "$svc: stopped by the cancel (57014)");

	# a cancel whose drops in the source wait for a writer beyond its
	# attempts fails with 55P03 and changes nothing here
	$w = $node->background_psql('postgres');
	$w->query_safe("BEGIN; UPDATE ${svc}_b_parent SET v = 'uncommitted' WHERE id = 100");
	($ret, $out, $err) = psql_verbose($node, 'postgres',
		"SET splitdb.cutover_lock_timeout = 100; SET splitdb.cutover_attempts = 2;\nSELECT splitdb_cancel('$svc');");
	like($err, qr/55P03: /, "$svc: a cancel that cannot lock the source's tables fails with 55P03");
	$w->query_safe('ROLLBACK');
	$w->quit;
	is(job_state($svc), 'failed', "$svc: the job is still failed");
	check_source_intact($svc, $expected, "$svc after the cancel's 55P03");

	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_cancel('$svc');");
	is($ret, 0, "$svc: splitdb_cancel() called again finishes") or diag($err);
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'cancelled', "$svc: the job is cancelled");
	check_source_intact($svc, $expected, "$svc cancelled");
	is( src("SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('${svc}_a_child'::regclass, '${svc}_b_parent'::regclass)"
			  . " AND tgname LIKE 'splitdb%'"),
		'0', "$svc: no capture trigger is left in the source");
	is(sib($svc, "SELECT count(*) FROM pg_class WHERE relname LIKE '${svc}\\_%'"),
		'0', "$svc: nothing of the job is left in the sibling");
	check_clean($svc, "$svc cancelled");
	my $id = src("SELECT splitdb_migrate('$svc', mode => 'offline', wait => true)");
	is(job($svc, 'state'), 'done', "$svc: migrated again after the cancel, done");
	is(digests($svc, $svc), $expected, "$svc: with the source's rows");
}

$far->stop;
$node->stop;
done_testing();
