//! The documentation kept in line with the command line: every `pgharbor …`
//! line in a shell code block of README.md, CHANGELOG.md, docs/*.md,
//! bench/README.md and deploy/README.md (and every pgharbor `command:`/`args:`
//! list in their YAML blocks) is
//! parsed by this build's own argument parser (the line is run with `--help`
//! appended: clap rejects an unknown subcommand, an unknown flag or a value
//! its parser refuses before it reaches `--help`), a few cheap ones are run
//! for real, and every relative link between the pages points at a file that
//! exists and, with an `#anchor`, at one of its headings.

use crate::harness::{pgharbor, pgharbor_with, Scratch};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Sample values for the shell variables the docs use in command lines.
const VARIABLE_VALUE: &str = "postgresql://app@db.example.com/app";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Markdown pages whose commands and links are checked.
fn pages() -> Vec<PathBuf> {
    let root = workspace();
    let mut pages = vec![
        root.join("README.md"),
        root.join("CHANGELOG.md"),
        root.join("bench/README.md"),
        root.join("deploy/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// A command line found in a page, with where it was found.
struct DocumentedCommand {
    place: String,
    args: Vec<String>,
}

/// The lines of the shell code blocks of `text` (fences without a language
/// or marked sh/bash/shell/console), backslash continuations joined.
fn shell_block_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut in_shell_block = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(language) = trimmed.strip_prefix("```") {
            in_shell_block = match in_shell_block {
                Some(_) => None,
                None => Some(matches!(
                    language.trim(),
                    "" | "sh" | "bash" | "shell" | "console"
                )),
            };
            continue;
        }
        if in_shell_block != Some(true) {
            continue;
        }
        let (number, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        joined.push_str(trimmed);
        match joined.strip_suffix('\\') {
            Some(continued) => pending = Some((number, format!("{continued} "))),
            None => lines.push((number, joined)),
        }
    }
    lines
}

/// `line` up to a shell comment (a `#` after whitespace, outside quotes).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, character) in line.char_indices() {
        match (quote, character) {
            (None, '\'' | '"') => quote = Some(character),
            (Some(open), _) if character == open => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..at],
            _ => {}
        }
        previous = character;
    }
    line
}

/// Words that end one shell command and start the next.
const SHELL_OPERATORS: [&str; 8] = ["|", "||", "&&", ";", "&", ">", "2>", "<"];

/// The arguments after `pgharbor` on `line`, if one of the line's commands
/// (split at shell operators, leading `VAR=value` assignments skipped) runs
/// pgharbor: shell variables and command substitutions replaced by a sample
/// URL, `[--optional]` brackets removed.
fn pgharbor_arguments(line: &str) -> Option<Vec<String>> {
    let line = without_comment(line.trim_start_matches("$ "));
    let words = shlex::split(line)?;
    words
        .split(|word| SHELL_OPERATORS.contains(&word.as_str()))
        .find_map(|command| {
            let words: Vec<&String> = command
                .iter()
                .skip_while(|word| word.contains('=') && !word.starts_with('-'))
                .collect();
            let (program, arguments) = words.split_first()?;
            (program.as_str() == "pgharbor" || program.ends_with("/pgharbor")).then(|| {
                arguments
                    .iter()
                    .map(|word| match word.contains('$') {
                        true => VARIABLE_VALUE.to_string(),
                        false => word
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_string(),
                    })
                    .collect()
            })
        })
}

/// The `pgharbor` argument lists in the YAML code blocks of `text`: a
/// `command:` or `args:` flow list that starts with `pgharbor`, runs it
/// through `sh -c`, or belongs to a container whose image is pgharbor's
/// (its entrypoint), with the line number.
fn yaml_pgharbor_arguments(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let mut in_yaml_block = None;
    let mut pgharbor_image = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(language) = trimmed.strip_prefix("```") {
            in_yaml_block = match in_yaml_block {
                Some(_) => None,
                None => Some(language.trim() == "yaml"),
            };
            pgharbor_image = false;
            continue;
        }
        if in_yaml_block != Some(true) {
            continue;
        }
        if let Some(image) = trimmed.strip_prefix("image:") {
            pgharbor_image = without_comment(image).contains("pgharbor");
        }
        let Some(list) = ["command:", "args:"]
            .iter()
            .find_map(|key| trimmed.strip_prefix(key))
        else {
            continue;
        };
        let Ok(words) = serde_json::from_str::<Vec<String>>(without_comment(list).trim()) else {
            continue;
        };
        let arguments = match words.as_slice() {
            [program, rest @ ..] if program == "pgharbor" => Some(rest.to_vec()),
            [shell, flag, script] if shell == "sh" && flag == "-c" => pgharbor_arguments(script),
            _ if pgharbor_image => Some(words),
            _ => None,
        };
        if let Some(arguments) = arguments {
            found.push((index + 1, arguments));
        }
    }
    found
}

fn documented_commands() -> Vec<DocumentedCommand> {
    let root = workspace();
    let mut commands = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        let name = page
            .strip_prefix(&root)
            .unwrap_or(&page)
            .display()
            .to_string();
        for (number, line) in shell_block_lines(&text) {
            if let Some(args) = pgharbor_arguments(&line) {
                let place = format!("{name}:{number}: {line}");
                commands.push(DocumentedCommand { place, args });
            }
        }
        for (number, args) in yaml_pgharbor_arguments(&text) {
            let place = format!("{name}:{number}: {}", args.join(" "));
            commands.push(DocumentedCommand { place, args });
        }
    }
    commands
}

#[test]
fn every_documented_command_line_parses() {
    let commands = documented_commands();
    assert!(
        commands.len() >= 50,
        "only {} pgharbor command lines found in the docs: is the extraction broken?",
        commands.len()
    );
    let problems: Vec<String> = commands
        .iter()
        .filter_map(|command| {
            let mut args: Vec<&str> = command.args.iter().map(String::as_str).collect();
            args.push("--help");
            let run = pgharbor(&args);
            (run.code != 0).then(|| format!("{}\n  {}", command.place, run.stderr.trim()))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} documented command line(s) this build rejects:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_misspelt_flag_in_a_documented_line_is_caught() {
    let text = "```sh\npgharbor migrate app.db \"$DATABASE_URL\" --jobs 2 --dry-rn   # typo\n```\n";
    let lines = shell_block_lines(text);
    let args = pgharbor_arguments(&lines[0].1).expect("a pgharbor line");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--help");
    pgharbor(&args).fails_with(2, &["--dry-rn"]);
}

/// The first command line documented in `page` whose arguments start with
/// `prefix`.
fn documented(commands: &[DocumentedCommand], page: &str, prefix: &[&str]) -> Vec<String> {
    commands
        .iter()
        .filter(|command| command.place.starts_with(&format!("{page}:")))
        .find(|command| {
            command
                .args
                .iter()
                .map(String::as_str)
                .take(prefix.len())
                .eq(prefix.iter().copied())
        })
        .unwrap_or_else(|| panic!("no `pgharbor {}` line in {page}", prefix.join(" ")))
        .args
        .clone()
}

#[test]
fn cheap_documented_commands_run() {
    let commands = documented_commands();

    let generate = documented(&commands, "README.md", &["secret", "generate"]);
    let generate: Vec<&str> = generate.iter().map(String::as_str).collect();
    let password = pgharbor(&generate).success().stdout.trim().to_string();
    assert_eq!(
        password.chars().count(),
        24,
        "docs/connecting.md promises 24 characters: {password}"
    );
    assert!(
        password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
        "{password}"
    );

    // docs/connecting.md shows this password's URL under the command.
    let build = documented(&commands, "docs/connecting.md", &["url", "build"]);
    let build: Vec<&str> = build.iter().map(String::as_str).collect();
    let built = pgharbor_with(&build, &[], Some("Abc123XYZ!@#")).success();
    let connecting = std::fs::read_to_string(workspace().join("docs/connecting.md"))
        .expect("read docs/connecting.md");
    let shown = format!("# {}", built.stdout.trim());
    assert!(
        connecting.contains(&shown),
        "{shown:?} is not what docs/connecting.md shows"
    );

    let inspect = documented(&commands, "docs/connecting.md", &["url", "inspect"]);
    let mut inspect: Vec<&str> = inspect.iter().map(String::as_str).collect();
    inspect[2] = built.stdout.trim();
    let inspected = pgharbor(&inspect).success();
    assert!(
        inspected.stdout.contains("****") && !inspected.all().contains("Abc123XYZ"),
        "{}",
        inspected.all()
    );

    let scratch = Scratch::new();
    let app = scratch.sqlite(
        "app.db",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO note VALUES (1, 'x');",
    );
    let dry_run = documented(
        &commands,
        "docs/sqlite.md",
        &["migrate", "app.db", "--dry-run"],
    );
    let mut dry_run: Vec<&str> = dry_run.iter().map(String::as_str).collect();
    dry_run[1] = app.to_str().expect("utf-8 path");
    let plan = pgharbor(&dry_run).success();
    assert!(plan.stdout.contains("note"), "{}", plan.all());
}

/// The relative link targets in `text` (no scheme) as the file (empty for
/// the page itself) and the `#anchor` (empty when there is none).
fn relative_links(text: &str) -> Vec<(String, String)> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .map(|target| match target.split_once('#') {
            Some((file, anchor)) => (file.to_string(), anchor.to_string()),
            None => (target.to_string(), String::new()),
        })
        .collect()
}

/// The anchors GitHub gives the headings of `text` (outside code blocks):
/// lowercased, punctuation dropped, spaces made dashes, `-1`, `-2`, …
/// appended to repeats.
fn heading_anchors(text: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !in_code) else {
            continue;
        };
        let slug: String = heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = seen.entry(slug.clone()).or_insert(0);
        anchors.push(match *repeats {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *repeats += 1;
    }
    anchors
}

#[test]
fn relative_links_between_pages_resolve() {
    let mut checked = 0;
    let mut missing = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        let directory = page.parent().expect("page directory");
        for (file, anchor) in relative_links(&text) {
            checked += 1;
            let target = if file.is_empty() {
                page.clone()
            } else {
                directory.join(&file)
            };
            if !target.exists() {
                missing.push(format!("{}: {file} does not exist", page.display()));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            let target_text = std::fs::read_to_string(&target).expect("read link target");
            if !heading_anchors(&target_text).contains(&anchor) {
                missing.push(format!(
                    "{}: no heading for #{anchor} in {}",
                    page.display(),
                    target.display()
                ));
            }
        }
    }
    assert!(checked >= 30, "only {checked} relative links found");
    assert!(
        missing.is_empty(),
        "links that do not resolve:\n{}",
        missing.join("\n")
    );
}
