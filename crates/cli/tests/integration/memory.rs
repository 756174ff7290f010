//! Memory with very large values: the peak RSS of a migration grows with
//! the largest value by a small multiple, not with how many such values
//! there are or how deeply their JSON nests.

use crate::harness::{cluster, scalar, Scratch};
use std::path::Path;
use std::process::Command;

/// A JSON document of about `mb` MB in the shapes that cost the most:
/// objects nested three deep whose keys are out of order (jsonb sorts
/// them, so the verification reorders them on both sides), long strings
/// holding escapes, numbers.
fn document_sql(mb: usize) -> String {
    let third = mb * 1024 * 1024 / 3 / 3;
    format!(
        "'{{\"z\":{{\"messages\":{{\"m2\":{{\"content\":\"' || replace(hex(zeroblob({third})), '00', 'ab\\n') \
         || '\",\"role\":\"user\"}},\"m1\":{{\"content\":\"' || replace(hex(zeroblob({third})), '00', 'cde') \
         || '\"}}}}}},\"a\":\"' || replace(hex(zeroblob({third})), '00', 'x\\\"y') || '\",\"n\":' || g || '}}'"
    )
}

/// A SQLite file with a `doc` table: `rows` documents of `mb` MB, and
/// small ones around them.
fn documents(scratch: &Scratch, name: &str, rows: usize, mb: usize) -> std::path::PathBuf {
    scratch.sqlite(
        name,
        &format!(
            "CREATE TABLE doc (id INTEGER PRIMARY KEY, body JSON NOT NULL);
             WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 100)
             INSERT INTO doc (body) SELECT '{{\"small\":' || g || '}}' FROM n;
             WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {rows})
             INSERT INTO doc (body) SELECT {} FROM n WHERE g <= {rows};
             INSERT INTO doc (body) VALUES ('[1, 2.50, \"end\"]');",
            document_sql(mb)
        ),
    )
}

/// Peak RSS in MiB of `pgharbor migrate FILE URL --jobs 2` (with its
/// verification), from the kernel's accounting of the finished child
/// (getrusage through python3), and the rows migrated.
fn migrate_peak_mib(file: &Path, url: &str) -> f64 {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n\
        sys.stderr.write(r.stdout + r.stderr)\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(r.returncode)";
    let out = Command::new("python3")
        .args(["-c", MEASURE, env!("CARGO_BIN_EXE_pgharbor"), "migrate"])
        .arg(file)
        .args([url, "--jobs", "2"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgharbor failed:\n{stderr}");
    let kib: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ru_maxrss");
    kib / 1024.0
}

/// Two 12 MB documents cost at most a small multiple of 12 MB over the
/// same migration with only small documents (measured: about 3×; before
/// large blocks were given back and the COPY pieces, COPY-out rows and
/// canonical JSON stopped holding extra copies, about 9×).
#[test]
fn peak_memory_is_a_small_multiple_of_the_largest_value() {
    const MB: usize = 12;
    let pg = cluster();
    let scratch = Scratch::new();
    let small = documents(&scratch, "small.db", 0, MB);
    let large = documents(&scratch, "large.db", 2, MB);
    pg.create_database("small");
    pg.create_database("large");
    let fixed = migrate_peak_mib(&small, &pg.url("small"));
    let peak = migrate_peak_mib(&large, &pg.url("large"));
    assert_eq!(scalar(&pg, "large", "SELECT count(*) FROM doc"), "103");
    let largest: f64 = scalar(
        &pg,
        "large",
        "SELECT max(octet_length(body::text)) / 1048576.0 FROM doc",
    )
    .parse()
    .unwrap();
    assert!(largest > 11.0, "{largest} MiB");
    let multiple = (peak - fixed) / largest;
    assert!(
        multiple <= 5.0,
        "peak {peak:.0} MiB, {fixed:.0} MiB without the large documents: {multiple:.1} × the largest value ({largest:.1} MiB)"
    );
}
