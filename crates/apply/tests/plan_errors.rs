//! Plan files that are wrong: the error names the problem and its position,
//! and never repeats a password written in the plan.

use pgharbor_apply::{ApplyError, Plan};

const CANARY: &str = "Pw_CANARY_7f3a";

fn parse_err(text: &str) -> ApplyError {
    Plan::parse(text, "plan.toml").expect_err("the plan should be rejected")
}

fn assert_no_canary(e: &ApplyError) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(CANARY), "the password leaked: {shown}");
}

#[test]
fn an_unknown_key_is_named_with_its_position() {
    let text = format!(
        "[target]\nurl = \"postgresql://admin@db/postgres\"\n\n[[role]]\nname = \"app\"\n\
         password = \"{CANARY}\"\nsuperuesr = true\n"
    );
    let e = parse_err(&text);
    let ApplyError::ParsePlan {
        file,
        line,
        column,
        message,
    } = &e
    else {
        panic!("expected a parse error, got {e:?}");
    };
    assert_eq!((file.as_str(), *line, *column), ("plan.toml", 7, 1), "{e}");
    assert!(message.contains("unknown field `superuesr`"), "{e}");
    assert!(e.to_string().starts_with("plan.toml:7:1: "), "{e}");
    assert_no_canary(&e);

    let e = parse_err(
        "[target]\nurl = \"postgresql://db/postgres\"\n[[database]]\nname = \"d\"\n\
         extensions = [{ name = \"vector\", verison = \"0.6.2\" }]\n",
    );
    assert!(e.to_string().contains("unknown field `verison`"), "{e}");
    assert!(e.to_string().starts_with("plan.toml:5:"), "{e}");

    let e = parse_err("[target]\nurl = \"postgresql://db/postgres\"\n[[database]]\nname = \"d\"\n[[database.schema]]\nname = \"s\"\nownr = \"x\"\n");
    assert!(e.to_string().contains("unknown field `ownr`"), "{e}");
}

#[test]
fn a_broken_literal_password_line_is_never_echoed() {
    // Unterminated string, trailing garbage, and a password put where a
    // boolean belongs: the toml crate would quote each line.
    let cases = [
        format!("[target]\nurl = \"postgresql://db/postgres\"\n[[role]]\nname = \"a\"\npassword = \"{CANARY}\n"),
        format!("[target]\nurl = \"postgresql://db/postgres\"\n[[role]]\nname = \"a\"\npassword = \"{CANARY}\" x\n"),
        format!("[target]\nurl = \"postgresql://db/postgres\"\n[[role]]\nname = \"a\"\nlogin = \"{CANARY}\"\n"),
        format!("[target]\nurl = \"postgresql://admin:{CANARY}@db/postgres\"\nurl = \"x\"\n"),
    ];
    for text in &cases {
        let e = parse_err(text);
        assert!(
            matches!(e, ApplyError::ParsePlan { line: 3..=5, .. }),
            "{e:?}"
        );
        assert_no_canary(&e);
    }
}

#[test]
fn impossible_plans_are_explained() {
    let base = "[target]\nurl = \"postgresql://db/postgres\"\n";
    let cases = [
        ("[[role]]\nname = \"a\"\n[[role]]\nname = \"a\"\n", "the role a is listed twice"),
        ("[[role]]\nname = \"a\"\nmember_of = [\"a\"]\n", "role a: a role cannot be a member of itself"),
        (
            "[[database]]\nname = \"d\"\ngrants = [{ role = \"r\", privileges = [\"SELECT\"] }]\n",
            "database d: grant to r: \"SELECT\" is not a privilege on a database",
        ),
        (
            "[[database]]\nname = \"d\"\n[[database.schema]]\nname = \"s\"\ngrants = [{ role = \"r\", privileges = [\"CONNECT\"] }]\n",
            "database d: schema s: grant to r: \"CONNECT\" is not a privilege on a schema",
        ),
        ("[[database]]\nname = \"d\"\nicu_locale = \"en\"\n", "icu_locale needs locale_provider"),
        ("[[database]]\nname = \"d\"\nextensions = [\"x\", \"x\"]\n", "the extension x is listed twice"),
    ];
    for (tail, expected) in cases {
        let e = parse_err(&format!("{base}{tail}"));
        assert!(matches!(e, ApplyError::InvalidPlan { .. }), "{e:?}");
        assert!(e.to_string().contains(expected), "{e}");
    }
}

#[test]
fn secrets_copies_and_the_target_resolve_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("admin");
    std::fs::write(&pw, format!("{CANARY}\n")).unwrap();
    let text = format!(
        "[target]\nurl = \"postgresql://admin@db.example.com:5433/postgres\"\npassword = {{ file = {:?} }}\n\
         [[database]]\nname = \"mealie\"\nowner = \"mealie\"\ncopy_from = \"postgresql://mealie@old-db/mealie\"\n\
         [[database]]\nname = \"other\"\n",
        pw.display().to_string()
    );
    let plan = Plan::parse(&text, "plan.toml").unwrap();
    let target = plan.target_config().unwrap();
    assert_eq!(target.password().unwrap().expose(), CANARY);
    assert!(!format!("{target} {target:?} {plan:?}").contains(CANARY));

    let copies = plan.copies().unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].database, "mealie");
    assert_eq!(copies[0].owner.as_deref(), Some("mealie"));
    assert_eq!(copies[0].source.host().to_string(), "old-db");
    assert_eq!(copies[0].target.dbname(), "mealie");
    assert_eq!(copies[0].target.port(), 5433);

    let missing = "[target]\nurl = { env = \"PGHARBOR_APPLY_TEST_SURELY_UNSET\" }\n";
    let e = Plan::parse(missing, "plan.toml")
        .unwrap()
        .target_config()
        .unwrap_err();
    assert_eq!(e.to_string(), "the target url", "the context alone");
    let cause = std::error::Error::source(&e).expect("the secret's error is the source");
    assert!(
        cause
            .to_string()
            .contains("PGHARBOR_APPLY_TEST_SURELY_UNSET"),
        "{cause}"
    );
}
