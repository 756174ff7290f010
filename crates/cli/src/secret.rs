//! `pgharbor secret generate`.

use crate::args::GenerateArgs;
use crate::Failure;
use pgharbor_conn::{generate_password, write_secret_file, PasswordRules, DEFAULT_SYMBOLS};

/// Generates a password; prints it, or writes it to a 0600 file.
pub fn generate(args: GenerateArgs) -> Result<u8, Failure> {
    let symbols = if args.no_symbols {
        String::new()
    } else {
        args.symbols.unwrap_or_else(|| DEFAULT_SYMBOLS.to_owned())
    };
    let rules = PasswordRules {
        length: args.length,
        symbols,
    };
    rules
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;
    for note in rules.notes() {
        eprintln!("pgharbor: note: {note}");
    }
    let password = generate_password(&rules)?;
    match &args.output {
        None => println!("{}", password.expose()),
        Some(path) => {
            write_secret_file(path, &password, args.force).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "{} already exists; pass --force to replace it",
                        path.display()
                    )
                } else {
                    anyhow::anyhow!("cannot write {}: {e}", path.display())
                }
            })?;
            println!("wrote {}", path.display());
        }
    }
    Ok(0)
}
