//! The target-disk-full cells of the commands whose tables are created by
//! someone else than the test: `migrate postgres://…`, `apply`,
//! `migrate chroma:DIR`, `restore` and `backups verify --restore-to`. An
//! event trigger moves every table the command creates onto a tablespace on
//! a small tmpfs ([`SmallDisk`]) as it is created, so the COPY into it meets
//! a real `ENOSPC` (SQLSTATE 53100) however the command creates its tables
//! (its own `CREATE TABLE`, `pg_restore`, in a database it creates from
//! `template0`).

use super::{
    listed_state, restore_ends_equal, run_in_template0, shop_backup, target_state,
    verify_scratch_databases,
};
use crate::harness::{pgharbor, scalar, Scratch, SmallDisk};
use crate::postgres_copy::{fingerprint, pgharbor_pg};
use pgharbor_testkit::{Cluster, Flavor};
use std::path::PathBuf;

/// What a full target disk's message says, whatever the command.
const DISK_FULL: [&str; 2] = [
    "No space left on device",
    "(or grow its volume) and run again",
];

/// A [`SmallDisk`] of `size` for `pg`, named `name`, made the tablespace
/// `name` of `pg`.
fn small_tablespace(pg: &Cluster, name: &str, size: &str) -> SmallDisk {
    let disk = SmallDisk::mount(
        std::env::temp_dir().join(format!("pgharbor-faults-{name}-{}", pg.port())),
        size,
    );
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLESPACE {name} LOCATION '{}'",
            disk.path.display()
        ),
    );
    disk
}

/// The SQL of an event trigger moving every table created in the database
/// onto tablespace `space` as it is created.
fn tables_onto_sql(space: &str) -> String {
    format!(
        "CREATE FUNCTION pgharbor_test_onto_small() RETURNS event_trigger LANGUAGE plpgsql AS $f$
         DECLARE r record;
         BEGIN
           FOR r IN SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
             EXECUTE format('ALTER TABLE %s SET TABLESPACE {space}', r.objid::regclass);
           END LOOP;
         END $f$;
         CREATE EVENT TRIGGER pgharbor_test_onto_small ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
           EXECUTE FUNCTION pgharbor_test_onto_small();"
    )
}

/// `restore` into a database it creates, and `backups verify --restore-to`
/// into its scratch database, with the target's disk filling mid-load:
/// each says the disk is full and what to do, drops the database it
/// created (the space is free again), and `verify` leaves the backup's
/// state as it was (not judged); after growing the volume the same restore
/// ends with the row counts equal and the same verify passes.
#[test]
fn restore_and_verify_on_a_full_disk_drop_what_they_created_and_succeed_after_growing() {
    let pg = Cluster::start(Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    let disk = small_tablespace(&pg, "small_restore", "3M");
    run_in_template0(&pg, &tables_onto_sql("small_restore"));
    let latest = format!("{dest}/latest");
    let run = pgharbor_pg(&["restore", &latest, &pg.url("restored")]);
    let mut needles = DISK_FULL.to_vec();
    needles.push("the database \"restored\" it created was dropped");
    run.fails_with(1, &needles);
    assert_eq!(
        scalar(
            &pg,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'restored'"
        ),
        "0"
    );
    let state_before = listed_state(dest);
    let verify = [
        "backups",
        "verify",
        dest,
        "--restore-to",
        &pg.url("postgres"),
    ];
    let mut needles = DISK_FULL.to_vec();
    needles.extend(["it created was dropped", "The backup was not judged"]);
    pgharbor_pg(&verify).fails_with(1, &needles);
    assert_eq!(verify_scratch_databases(&pg), "0");
    assert_eq!(listed_state(dest), state_before);
    disk.grow("64M");
    restore_ends_equal(&pg, dest, "restored", &[]);
    let run = pgharbor_pg(&verify).success();
    assert!(
        run.stdout.contains("restored and row counts equal"),
        "{}",
        run.stdout
    );
    assert_eq!(listed_state(dest), "verified");
    assert_eq!(verify_scratch_databases(&pg), "0");
}

/// A source database `app` of 60,000 rows (more than a 3 MB volume holds).
fn app_source() -> Cluster {
    let source = Cluster::start(Flavor::Pg16Vector);
    source.create_database("app");
    source.psql(
        "app",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 60000) g;",
    );
    source
}

/// A database `name` of `target` whose tables go onto a new 3 MB volume.
fn full_database(target: &Cluster, name: &str) -> SmallDisk {
    let disk = small_tablespace(target, &format!("small_{name}"), "3M");
    target.create_database(name);
    target.psql(name, &tables_onto_sql(&format!("small_{name}")));
    disk
}

/// `migrate postgres://… postgres://…` and `apply` (its copy) into
/// databases whose disk fills mid-load: each says the disk is full, that
/// what was copied is kept and recorded, and how to go on (`--resume`; for
/// `apply`, the same command); after growing the volume that command ends
/// with the tables equal to the source's.
#[test]
fn database_copy_and_apply_on_a_full_disk_are_finished_after_growing() {
    let source = app_source();
    let target = Cluster::start(Flavor::Pg16Vector);
    let copy_disk = full_database(&target, "copy");
    let apply_disk = full_database(&target, "applied");
    let copy = [
        "migrate",
        &source.url("app"),
        &target.url("copy"),
        "--jobs",
        "1",
    ];
    let mut needles = DISK_FULL.to_vec();
    needles.extend(["kept and recorded in the target", "--resume"]);
    pgharbor_pg(&copy).fails_with(1, &needles);
    let scratch = Scratch::new();
    let plan = scratch.path("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nurl = \"{}\"\n\n[[database]]\nname = \"applied\"\ncopy_from = \"{}\"\n",
            target.url("postgres"),
            source.url("app")
        ),
    )
    .expect("write the plan");
    let apply = ["apply", plan.to_str().unwrap(), "--jobs", "1"];
    let mut needles = DISK_FULL.to_vec();
    needles.extend([
        "copying into database",
        "kept and recorded in the target",
        "run the same command again to finish",
    ]);
    pgharbor_pg(&apply).fails_with(1, &needles);
    copy_disk.grow("64M");
    apply_disk.grow("64M");
    let mut resume = copy.to_vec();
    resume.push("--resume");
    let run = pgharbor_pg(&resume).success();
    assert!(run.stdout.contains("resumed"), "{}", run.stdout);
    let run = pgharbor_pg(&apply).success();
    assert!(
        run.stdout.contains("resumed") && run.stdout.contains("verified"),
        "{}",
        run.stdout
    );
    for name in ["copy", "applied"] {
        assert_eq!(
            fingerprint(&source, "app", "SELECT * FROM item"),
            fingerprint(&target, name, "SELECT * FROM item"),
            "{name}"
        );
    }
}

/// A Chroma store moved into a database whose disk fills mid-load: the
/// message says the disk is full, that nothing was kept (the tables it
/// created are removed, with their record), and to run again; after
/// growing the volume the same command ends verified.
#[test]
fn chroma_on_a_full_disk_removes_what_it_created_and_runs_again_after_growing() {
    let scratch = Scratch::new();
    let dir = scratch.path("store");
    pgharbor_testkit::copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.0.20/store"),
        &dir,
    );
    let source = format!("chroma:{}", dir.display());
    let pg = Cluster::start(Flavor::Pg16Vector);
    let disk = small_tablespace(&pg, "small_vectors", "256K");
    pg.create_database("vectors");
    pg.psql("vectors", &tables_onto_sql("small_vectors"));
    let mut needles = DISK_FULL.to_vec();
    needles.extend(["Nothing was kept", "The same command can be run again"]);
    let run = pgharbor(&["migrate", &source, &pg.url("vectors")]).fails_with(1, &needles);
    let (tables, record) = target_state(&pg, "vectors");
    assert!(tables.is_empty(), "left behind: {tables:?}\n{}", run.stderr);
    assert!(!record, "the record of created tables was left");
    disk.grow("64M");
    let run = pgharbor(&["migrate", &source, &pg.url("vectors"), "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    assert!(
        !target_state(&pg, "vectors").1,
        "the record outlived the run"
    );
}
