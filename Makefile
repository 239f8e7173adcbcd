# Makefile for splitdb (PGXS)
#
# make            build the extension
# make install    install it into the PostgreSQL that pg_config names
# make test       every suite on a throwaway cluster (see test/run)
# make demo       the pet resort demo on a throwaway cluster (see test/demo/run)
# make bench      the migration benchmark: medians of alternated rounds
#                 (test/bench/migrate, docs/benchmarks.md)
# make bench-references  the cost of cross-service references, both shapes
#                 (test/bench/references, docs/benchmarks.md)
# make bench-rollback  splitdb_rollback() under pgbench writes: capture
#                 overhead, longest wait, rows lost (test/bench/rollback)
# make bench-online  an online migration under pgbench writes against an
#                 offline one: TPS by phase, longest wait, rows lost
#                 (test/bench/online)
# make bench-rowhash  the row hash of the checksums: hash_record_extended(ROW())
#                 against splitdb.row_hash() (test/bench/rowhash)
# make bench-capture  the write cost of change capture: no trigger, empty
#                 statement triggers, capture through SPI, direct (test/bench/capture)

MODULE_big = splitdb
OBJS = \
	src/splitdb.o \
	src/metadata/artifact.o \
	src/metadata/catalog.o \
	src/metadata/ownership.o \
	src/metadata/ownerrights.o \
	src/metadata/service.o \
	src/migrate/access.o \
	src/migrate/archivepart.o \
	src/migrate/cancel.o \
	src/migrate/capture.o \
	src/migrate/capturelog.o \
	src/migrate/capturemerge.o \
	src/migrate/capturepart.o \
	src/migrate/copier.o \
	src/migrate/copy.o \
	src/migrate/cutover.o \
	src/migrate/ddl.o \
	src/migrate/ddlapply.o \
	src/migrate/ddlguard.o \
	src/migrate/doctor.o \
	src/migrate/fence.o \
	src/migrate/finalize.o \
	src/migrate/job.o \
	src/migrate/jobexit.o \
	src/migrate/jobstate.o \
	src/migrate/launcher.o \
	src/migrate/matview.o \
	src/migrate/online.o \
	src/migrate/catchup.o \
	src/migrate/lockwait.o \
	src/migrate/pause.o \
	src/migrate/peer.o \
	src/migrate/range.o \
	src/migrate/record.o \
	src/migrate/replay.o \
	src/migrate/rowhash.o \
	src/migrate/restore.o \
	src/migrate/rollback.o \
	src/migrate/shape.o \
	src/migrate/shareddb.o \
	src/migrate/shim.o \
	src/migrate/step.o \
	src/migrate/undo.o \
	src/migrate/verify.o \
	src/migrate/worker.o \
	src/migrate/freecores.o \
	src/plan/dot.o \
	src/plan/functions.o \
	src/plan/onlinekey.o \
	src/plan/shimrights.o \
	src/plan/shimmappings.o \
	src/plan/sharedsibling.o \
	src/plan/plan.o \
	src/plan/rowtype.o \
	src/plan/viewwalk.o \
	src/reference/constraintsfwd.o \
	src/reference/attachcheck.o \
	src/reference/execdepth.o \
	src/reference/fdwwatch.o \
	src/reference/mapping.o \
	src/reference/origin.o \
	src/reference/origin_pair.o \
	src/reference/orphan.o \
	src/reference/refcheck.o \
	src/reference/refcheck_act.o \
	src/reference/refcheck_ahead.o \
	src/reference/refcheck_check.o \
	src/reference/refcheck_constraint.o \
	src/reference/refcheck_def.o \
	src/reference/refcheck_eqop.o \
	src/reference/refcheck_fast.o \
	src/reference/refcheck_hold.o \
	src/reference/refcheck_lookup.o \
	src/reference/refcheck_queue.o \
	src/reference/refcheck_relay.o \
	src/reference/refcheck_sql.o \
	src/reference/refcheck_xact.o \
	src/reference/reference.o \
	src/reference/refstats.o \
	src/reference/route.o \
	src/reference/shimforms.o \
	src/reference/shimguard.o \
	src/reference/trigguard.o \
	src/reference/dropguard.o \
	src/remote/checkconn.o \
	src/remote/checkconn_ahead.o \
	src/remote/checkconn_probe.o \
	src/remote/between.o \
	src/remote/copyin.o \
	src/remote/copyout.o \
	src/remote/deparse.o \
	src/remote/drainclose.o \
	src/remote/nextval.o \
	src/remote/prepared.o \
	src/remote/servertrust.o \
	src/remote/remote.o

EXTENSION = splitdb
DATA = sql/splitdb--0.1.sql
PGFILEDESC = "splitdb - split a monolith database into per-service databases"

REGRESS = service assign plan plan_finalized_mappings plan_way_back plan_dot plan_row_types plan_partition_keys plan_builtin_trigger plan_shim_rights plan_caller_rights verify migrate migrate_streams migrate_readers migrate_rows_total migrate_resume migrate_recopy migrate_offline_resume migrate_resume_keys migrate_opclasses migrate_domain_checks migrate_schema_access migrate_sibling_role migrate_shared_database migrate_transaction ddl_guard references reference_chains reference_deferred_triggers sibling_dropped_tables reference_action_paths reference_action_owner reference_finalized reference_connection reference_types reference_char_keys reference_error_fields reference_detail_rights reference_key_images reference_key_forms reference_report_order reference_partitions reference_registry reference_peer_ends function_paths privileges cancel doctor capture capture_merge_moves rollback rollback_partitions rollback_new_partitions online_partition_levels inheritance_writes rollback_kept_schema rollback_sibling_dependents shim_search_path cancel_search_path online online_domains shim_set_constraints xml_content service_name_escapes shim_dependents plan_shim_mappings reference_drop_constraint reference_self_actions reference_attach_partition reference_trigger_bypass reference_partition_truncate shim_on_conflict_views shim_remote_names server_owners reference_partition_moves reference_action_keys rollback_restore_failures migrate_foreign_key_ops migrate_sequence_states
# pg_regress databases; PGXS passes them with --dbname
CONTRIB_TESTDB = splitdb_regression
ISOLATION_TESTDB = splitdb_isolation

ISOLATION = admin_race cutover_peer_lock shared_database_race assign_race drop_race migrate_race migrate_snapshot references_race reference_connection_race rollback_race online_copy online_cutover online_cutover_race online_unique_swap online_unique_copy online_old_snapshot ddl_old_snapshot partition_truncate_race
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)

EXTRA_CLEAN = test/isolation/output_iso results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: every object depends on every
# header of src/, so that a changed struct never leaves an object built
# with its old layout.
SPLITDB_HEADERS = $(wildcard src/*.h src/*/*.h)
$(OBJS) $(OBJS:.o=.bc): $(SPLITDB_HEADERS)

.PHONY: test demo samples bench bench-references bench-rollback bench-online bench-capture bench-rowhash

test:
	test/run

samples:
	test/samples/run

demo:
	test/demo/run

bench:
	test/bench/migrate

bench-references:
	test/bench/references

bench-rollback:
	test/bench/rollback

bench-online:
	test/bench/online

bench-rowhash:
	test/bench/rowhash

bench-capture:
	test/bench/capture
