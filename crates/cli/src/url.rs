//! `pgharbor url build` and `pgharbor url inspect`.

use crate::args::{UrlBuildArgs, UrlInspectArgs};
use crate::Failure;
use pgharbor_conn::{
    inspect_url, inspect_url_with_env, Environment, Secret, UrlInspection, UrlParts,
};
use std::io::{IsTerminal as _, Read as _};

/// Exit status when the connection string does not parse.
const EXIT_UNPARSABLE: u8 = 2;

/// Reads a secret from standard input: without echo from a terminal,
/// otherwise everything until end of input; trailing line breaks removed.
fn read_stdin_secret(prompt: &str, what: &str) -> Result<Secret, Failure> {
    let text = if std::io::stdin().is_terminal() {
        Secret::new(
            rpassword::prompt_password(prompt)
                .map_err(|e| anyhow::anyhow!("cannot read the {what} from the terminal: {e}"))?,
        )
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("cannot read the {what} from standard input: {e}"))?;
        match String::from_utf8(bytes) {
            Ok(s) => Secret::new(s),
            Err(e) => {
                let mut bytes = e.into_bytes();
                bytes.fill(0);
                return Err(Failure::usage(format!(
                    "the {what} on standard input is not UTF-8 text"
                )));
            }
        }
    };
    let trimmed = text.expose().trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Failure::usage(format!("no {what} on standard input")));
    }
    Ok(Secret::new(trimmed))
}

/// `pgharbor url build`: prints the URL on stdout, remarks on stderr.
pub fn build(args: UrlBuildArgs) -> Result<u8, Failure> {
    let password = if args.password_stdin {
        Some(read_stdin_secret("Password: ", "password")?)
    } else {
        None
    };
    let parts = UrlParts {
        host: args.host,
        port: args.port,
        user: args.user,
        database: Some(args.database),
        password,
        sslmode: args.sslmode,
        params: args.params,
    };
    let url = parts.build().map_err(|e| Failure::usage(e.to_string()))?;
    // Remarks about the URL itself, not the caller's environment.
    if let Ok(report) = inspect_url_with_env(url.expose(), &Environment::empty()) {
        for w in &report.warnings {
            eprintln!("pgharbor: warning: {}; {}", w.message, w.fix);
        }
    }
    println!("{}", url.expose());
    Ok(0)
}

/// `pgharbor url inspect`: exit 0 when the string parses (warnings or not),
/// 2 when it does not.
pub fn inspect(args: UrlInspectArgs) -> Result<u8, Failure> {
    let text = if args.url == "-" {
        read_stdin_secret("Connection string: ", "connection string")?
    } else {
        Secret::new(args.url)
    };
    match inspect_url(text.expose()) {
        Ok(report) => {
            if args.json {
                let value = serde_json::json!({ "valid": true, "connection": report });
                crate::render::print_json(&value)?;
            } else {
                print_text(&report);
            }
            Ok(0)
        }
        Err(problem) => {
            if args.json {
                let value = serde_json::json!({ "valid": false, "error": problem });
                crate::render::print_json(&value)?;
                return Ok(EXIT_UNPARSABLE);
            }
            let mut message = problem.message;
            if let Some(fix) = problem.fix {
                message.push_str(&format!("\n  fix: {fix}"));
            }
            Err(Failure::usage(message))
        }
    }
}

fn print_text(r: &UrlInspection) {
    let from = |source: &str| match source {
        "default" => " (default)".to_owned(),
        "user name" => " (defaulted to the user name)".to_owned(),
        "operating-system user" => " (the operating-system user)".to_owned(),
        "connection string" => " (from the connection string)".to_owned(),
        var => format!(" (from {var})"),
    };
    println!(
        "host       {} [{}]{}",
        r.host,
        r.host_kind,
        from(r.host_from)
    );
    println!("port       {}", r.port);
    println!("user       {}{}", r.user, from(r.user_from));
    println!("database   {}{}", r.database, from(r.database_from));
    println!("sslmode    {}{}", r.sslmode, from(r.sslmode_from));
    match (r.password, &r.password_file) {
        (Some(mask), Some(file)) => println!("password   {mask} (from the password file {file})"),
        (Some(mask), None) => println!("password   {mask}{}", from(r.password_from)),
        (None, _) => println!("password   none"),
    }
    for p in &r.params {
        println!("param      {}={}", p.name, p.value);
    }
    for w in &r.warnings {
        println!("warning    {}", w.message);
        println!("  fix      {}", w.fix);
    }
    if r.warnings.is_empty() {
        println!("no warnings");
    }
}
