//! `pgharbor check`, `status`, `kill` and `serve`: parse, call
//! `pgharbor-health`, print.

use crate::args::{CheckArgs, KillArgs, ServeArgs, StatusArgs};
use crate::Failure;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_conn::ConnConfig;
use pgharbor_health::backups::{BackupSummary, BackupView, BackupWatch};
use pgharbor_health::duration::format_secs;
use pgharbor_health::kill::{KillAction, KillOptions};
use pgharbor_health::monitor::{Monitor, Watchlist};
use pgharbor_health::problems::one_line;
use pgharbor_health::query_text::QueryText;
use pgharbor_health::server::Site;
use pgharbor_health::status::{
    self, NotVisible, PgStatus, Problem, RedisStatus, Severity, StatusOptions,
};
use pgharbor_health::{human_bytes, CheckOptions, RedisUrl};
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;

/// `pg_isready`'s exit status for bad parameters.
pub const EXIT_BAD_PARAMETERS: u8 = 3;

/// Whether the command line runs `check` (its usage errors exit 3, as `pg_isready`'s do).
pub fn is_check_invocation() -> bool {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'))
        .is_some_and(|a| a == "check")
}

fn target_or_env(url: Option<String>) -> String {
    url.or_else(|| std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

fn is_redis(target: &str) -> bool {
    let t = target.trim_start();
    t.starts_with("redis://") || t.starts_with("rediss://")
}

/// `pgharbor check`: one line (or JSON), and pg_isready's exit status.
pub async fn check(args: CheckArgs) -> u8 {
    let target = target_or_env(args.url.clone());
    let options = CheckOptions {
        timeout: args.timeout,
        query: args
            .query_sql
            .clone()
            .or_else(|| args.query.then(|| "SELECT 1".to_owned())),
        max_connections_used: args.max_connections_used,
        writable: args.writable,
    };
    let mut report = pgharbor_health::check(&target, &options).await;
    if let Some(dest) = &args.archive {
        if report.readiness == pgharbor_health::Readiness::Accepting {
            let probes = crate::pitr::archive_probes(&target, dest, &args).await;
            if probes.iter().any(|p| !p.ok) {
                report.readiness = pgharbor_health::Readiness::Rejecting;
                report.exit_code = report.readiness.exit_code();
                report.message = probes
                    .iter()
                    .filter(|p| !p.ok)
                    .map(|p| format!("{}: {}", p.probe, p.detail))
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            report.probes.extend(probes);
        }
    }
    if args.json {
        match serde_json::to_string(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("pgharbor: error: {e}"),
        }
    } else if !args.quiet {
        println!("{}", report.line());
    }
    report.exit_code
}

fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn severity_label(s: Severity, colour: bool) -> String {
    let (word, code) = match s {
        Severity::Critical => ("CRITICAL", "1;31"),
        Severity::Warning => ("WARNING", "1;33"),
    };
    if colour {
        format!("\x1b[{code}m{word}\x1b[0m")
    } else {
        word.to_owned()
    }
}

fn problems_text(out: &mut String, problems: &[Problem], colour: bool) {
    if problems.is_empty() {
        let _ = writeln!(out, "No problems.");
    } else {
        let _ = writeln!(out, "Problems ({}):", problems.len());
        for p in problems {
            let _ = writeln!(
                out,
                "  {} [{}] {}",
                severity_label(p.severity, colour),
                p.section,
                p.message
            );
        }
    }
}

fn not_visible_text(out: &mut String, nv: &[NotVisible]) {
    if !nv.is_empty() {
        let _ = writeln!(out, "\nNot visible:");
        for n in nv {
            let _ = writeln!(out, "  {}: {}", n.section, n.reason);
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn opt_secs(v: Option<f64>) -> String {
    v.map(format_secs).unwrap_or_else(|| "-".to_owned())
}

/// The terminal form of a PostgreSQL status: problems first.
pub fn pg_text(s: &PgStatus, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", s.target);
    problems_text(&mut out, &s.problems, colour);
    if let Some(srv) = &s.server {
        let _ = writeln!(out, "\nServer");
        let _ = writeln!(out, "  {}", srv.version);
        let _ = writeln!(
            out,
            "  up {} (since {}), {}; connected as {}{}",
            format_secs(srv.uptime_seconds),
            srv.started_at,
            if srv.in_recovery {
                "standby in recovery"
            } else {
                "primary"
            },
            srv.current_user,
            if srv.superuser {
                " (superuser)"
            } else if srv.monitor_role {
                " (pg_monitor)"
            } else {
                ""
            }
        );
        let settings: Vec<String> = srv
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "  {}", settings.join("  "));
    }
    if let Some(c) = &s.connections {
        let _ = writeln!(
            out,
            "\nConnections: {} of max_connections {} ({:.0}%, {} reserved for superusers)",
            c.total, c.max_connections, c.used_pct, c.superuser_reserved
        );
        let mut t = table(&["database", "state", "sessions"]);
        for d in &c.by_database {
            t.add_row(vec![
                d.database.clone(),
                d.state.clone(),
                d.count.to_string(),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(dbs) = &s.databases {
        let _ = writeln!(out, "\nDatabases");
        let mut t = table(&["database", "size"]);
        for d in dbs {
            t.add_row(vec![
                d.database.clone(),
                d.size_bytes
                    .map(|b| human_bytes(b as f64))
                    .unwrap_or_else(|| "not visible (no CONNECT)".to_owned()),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    let sessions = |out: &mut String,
                    title: &str,
                    list: &[status::Session],
                    seconds: fn(&status::Session) -> Option<f64>| {
        let _ = writeln!(out, "\n{title}: {}", list.len());
        if !list.is_empty() {
            let mut t = table(&["pid", "user@database", "application", "for", "query"]);
            for x in list {
                t.add_row(vec![
                    x.pid.to_string(),
                    format!("{}@{}", x.user, x.database),
                    x.application_name.clone(),
                    opt_secs(seconds(x)),
                    one_line(&x.query, 60),
                ]);
            }
            let _ = writeln!(out, "{t}");
        }
    };
    if let Some(l) = &s.long_running {
        sessions(&mut out, "Long-running queries", l, |x| x.query_seconds);
    }
    if let Some(l) = &s.idle_in_transaction {
        sessions(&mut out, "Idle in transaction", l, |x| x.state_seconds);
    }
    if let Some(t) = s.longest_transaction_seconds {
        let _ = writeln!(out, "Longest open transaction: {}", format_secs(t));
    }
    if let Some(locks) = &s.locks {
        let _ = writeln!(out, "\nLocks: {} blocked session(s)", locks.blocked.len());
        for b in &locks.blocked {
            let by: Vec<String> = b.blocked_by.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(
                out,
                "  pid {} ({}@{}) waits on {} for {}: {}\n    blocked by pid {}",
                b.pid,
                b.user,
                b.database,
                if b.wait.is_empty() { "a lock" } else { &b.wait },
                opt_secs(b.state_seconds),
                one_line(&b.query, 60),
                by.join(", ")
            );
        }
        for b in &locks.blocking {
            let _ = writeln!(
                out,
                "  blocking: pid {} ({}@{}) {} for {}: {}",
                b.pid,
                b.user,
                b.database,
                b.state.as_deref().unwrap_or("hidden"),
                opt_secs(b.state_seconds),
                one_line(&b.query, 60)
            );
        }
    }
    if let Some(r) = &s.replication {
        let _ = writeln!(
            out,
            "\nReplication: {} replica(s), {} slot(s)",
            r.replicas.len(),
            r.slots.len()
        );
        for rep in &r.replicas {
            let _ = writeln!(
                out,
                "  replica {} {} {} {} lag {} ({})",
                rep.application_name,
                rep.client_addr,
                rep.state.as_deref().unwrap_or("?"),
                rep.sync_state.as_deref().unwrap_or("?"),
                opt_secs(rep.replay_lag_seconds),
                rep.lag_bytes
                    .map(|b| human_bytes(b as f64))
                    .unwrap_or_else(|| "-".to_owned())
            );
        }
        for slot in &r.slots {
            let _ = writeln!(
                out,
                "  slot {} ({}) {}, holds {} of WAL",
                slot.name,
                slot.slot_type,
                if slot.active { "active" } else { "INACTIVE" },
                slot.retained_bytes
                    .map(|b| human_bytes(b as f64))
                    .unwrap_or_else(|| "?".to_owned())
            );
        }
        if let Some(d) = r.standby_replay_delay_seconds {
            let _ = writeln!(
                out,
                "  standby: last replayed transaction {} ago",
                format_secs(d)
            );
        }
    }
    if let Some(w) = &s.wraparound {
        let _ = writeln!(out, "\nTransaction-ID wraparound");
        let mut t = table(&["database", "xid age", "% of limit", "mxid age"]);
        for x in w {
            t.add_row(vec![
                x.database.clone(),
                x.xid_age.to_string(),
                format!("{:.3}", x.pct_of_limit),
                x.mxid_age.to_string(),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(a) = &s.archiver {
        let _ = writeln!(
            out,
            "\nArchiver: archive_mode={}, {} archived, {} failed{}",
            a.archive_mode,
            a.archived_count,
            a.failed_count,
            if a.failing { " — FAILING" } else { "" }
        );
    }
    if let Some(c) = &s.cache_hit {
        let _ = writeln!(
            out,
            "Cache hit ratio: {}",
            c.overall
                .map(|r| format!("{:.2}%", r * 100.0))
                .unwrap_or_else(|| "-".to_owned())
        );
    }
    if let Some(st) = &s.statements {
        if st.installed {
            for (title, list) in [
                ("Top statements by total time", &st.by_total_time),
                ("Top statements by mean time", &st.by_mean_time),
            ] {
                let _ = writeln!(out, "\n{title}");
                let mut t = table(&["calls", "total ms", "mean ms", "rows", "query"]);
                for q in list {
                    t.add_row(vec![
                        q.calls.to_string(),
                        format!("{:.1}", q.total_ms),
                        format!("{:.2}", q.mean_ms),
                        q.rows.to_string(),
                        one_line(&q.query, 60),
                    ]);
                }
                let _ = writeln!(out, "{t}");
            }
        } else if let Some(how) = &st.how_to_enable {
            let _ = writeln!(out, "\nTop statements: {how}");
        }
    }
    if let Some(e) = &s.extensions {
        let list: Vec<String> = e
            .installed
            .iter()
            .map(|x| {
                if x.update_available {
                    format!(
                        "{} {} (update available: {}; ALTER EXTENSION {} UPDATE)",
                        x.name, x.installed_version, x.default_version, x.name
                    )
                } else {
                    format!("{} {}", x.name, x.installed_version)
                }
            })
            .collect();
        let _ = writeln!(out, "\nExtensions in {}: {}", e.database, list.join(", "));
    }
    if let Some(b) = &s.backups {
        backups_text(&mut out, b);
    }
    not_visible_text(&mut out, &s.not_visible);
    out
}

/// The `--backups DEST` section: last good and last verified backup, counts.
fn backups_text(out: &mut String, b: &BackupView) {
    let _ = writeln!(out, "\nBackups in {}:", b.dest);
    if let Some(error) = &b.error {
        let _ = writeln!(out, "  not readable: {error}");
        return;
    }
    let line = |s: &BackupSummary| {
        let took = s
            .duration_seconds
            .map(|d| format!(", took {}", format_secs(d)))
            .unwrap_or_default();
        format!(
            "{} ({}, {} ago, {}{took}; {})",
            s.id,
            s.kind,
            format_secs(s.age_seconds),
            human_bytes(s.size as f64),
            s.databases.join(", ")
        )
    };
    let or_none = |s: Option<&BackupSummary>| s.map_or_else(|| "none".to_owned(), line);
    let _ = writeln!(out, "  last good:     {}", or_none(b.last_good.as_ref()));
    let _ = writeln!(
        out,
        "  last verified: {}",
        or_none(b.last_verified.as_ref())
    );
    if let Some(wal) = &b.wal {
        let _ = writeln!(
            out,
            "  WAL archive:   {} files, the newest {} archived {} ago",
            wal.files,
            wal.last_archived,
            format_secs(wal.age_seconds)
        );
        if let Some(a) = &wal.archiver {
            let _ = writeln!(
                out,
                "  WAL archiver:  {}, reported {} ago, {} failure(s){}",
                if a.slot_lost {
                    "stopped, its slot lost"
                } else if a.running {
                    "running"
                } else {
                    "stopped"
                },
                format_secs(a.age_seconds()),
                a.failures,
                a.last_failure
                    .as_deref()
                    .map(|f| format!(", the last: {f}"))
                    .unwrap_or_default()
            );
            if let Some(lag) = a.lag_bytes {
                let seconds = a.lag_seconds.map_or_else(
                    || "an unknown time".to_owned(),
                    |s| {
                        let bound = if a.lag_is_bound { "at most " } else { "" };
                        format!("{bound}{}", format_secs(s))
                    },
                );
                let _ = writeln!(
                    out,
                    "  WAL lag:       {} not archived, the oldest written {seconds} ago (at the \
                     archiver's look {} ago)",
                    human_bytes(lag as f64),
                    a.look_age_seconds()
                        .map_or_else(|| "unknown".to_owned(), format_secs)
                );
            }
        }
    }
    let c = b.counts;
    let _ = writeln!(
        out,
        "  backups:       {} verified, {} complete, {} failed, {} corrupt (allowed age of the last good one: {})",
        c.verified,
        c.complete,
        c.failed,
        c.corrupt,
        format_secs(b.max_age_seconds)
    );
}

/// The terminal form of a Redis status.
pub fn redis_text(s: &RedisStatus, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", s.target);
    problems_text(&mut out, &s.problems, colour);
    let _ = writeln!(
        out,
        "\nServer: Redis {} ({}), up {}",
        s.version.as_deref().unwrap_or("?"),
        s.mode.as_deref().unwrap_or("?"),
        opt_secs(s.uptime_seconds)
    );
    if let Some(m) = &s.memory {
        let _ = writeln!(
            out,
            "Memory: {} used, maxmemory {}{}, eviction policy {}, fragmentation {}",
            human_bytes(m.used_bytes),
            if m.max_bytes > 0.0 {
                human_bytes(m.max_bytes)
            } else {
                "none".to_owned()
            },
            m.used_pct
                .map(|p| format!(" ({p:.0}% used)"))
                .unwrap_or_default(),
            m.eviction_policy,
            m.fragmentation_ratio
                .map(|f| format!("{f:.2}"))
                .unwrap_or_else(|| "-".to_owned())
        );
    }
    if let Some(c) = &s.clients {
        let _ = writeln!(
            out,
            "Clients: {} connected, {} blocked{}",
            c.connected,
            c.blocked,
            c.max
                .map(|m| format!(", maxclients {m}"))
                .unwrap_or_default()
        );
    }
    if let Some(p) = &s.persistence {
        let _ = writeln!(
            out,
            "Persistence: last save {}, last bgsave {}, {} changes since; AOF {}{}",
            p.last_save_unix
                .map(|t| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(t);
                    format!("{} ago", format_secs((now - t).max(0.0)))
                })
                .unwrap_or_else(|| "never".to_owned()),
            p.last_bgsave_status,
            p.changes_since_last_save.unwrap_or(0.0),
            if p.aof_enabled { "on" } else { "off" },
            if p.aof_enabled {
                format!(
                    " (last write {}, last rewrite {})",
                    p.aof_last_write_status, p.aof_last_bgrewrite_status
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(r) = &s.replication {
        let _ = writeln!(
            out,
            "Replication: role {}, {} replica(s){}",
            r.role,
            r.connected_replicas,
            r.master
                .as_ref()
                .map(|m| format!(
                    ", master {m} link {}",
                    r.master_link_status.as_deref().unwrap_or("?")
                ))
                .unwrap_or_default()
        );
    }
    let keys: Vec<String> = s
        .keyspace
        .iter()
        .map(|k| format!("{}: {} keys ({} expiring)", k.db, k.keys, k.expires))
        .collect();
    let _ = writeln!(
        out,
        "Keyspace: {}",
        if keys.is_empty() {
            "empty".to_owned()
        } else {
            keys.join(", ")
        }
    );
    if let Some(b) = &s.backups {
        backups_text(&mut out, b);
    }
    not_visible_text(&mut out, &s.not_visible);
    out
}

/// `pgharbor status`.
pub async fn status(args: StatusArgs) -> Result<u8, Failure> {
    let target = target_or_env(args.url);
    let options = StatusOptions {
        long_running_over: args.long_running_over,
        idle_in_transaction_over: args.idle_in_transaction_over,
        wraparound_warn: args.wraparound_warn,
        backups: args
            .backups
            .as_deref()
            .map(|dest| {
                let dest = crate::backup::destination(dest, &args.store)?;
                Ok::<_, Failure>(BackupWatch {
                    name: dest.to_string(),
                    dest: Arc::new(dest),
                    max_age: args.backups_max_age,
                })
            })
            .transpose()?,
        top_statements: args.top,
        timeout: args.timeout,
        query_text: QueryText::shown_whole(args.show_query_text),
    };
    enum Target {
        Pg(Box<ConnConfig>),
        Redis(RedisUrl),
    }
    let t = if is_redis(&target) {
        Target::Redis(RedisUrl::parse(&target).map_err(Failure::usage_error)?)
    } else {
        Target::Pg(Box::new(
            ConnConfig::parse(&target).map_err(Failure::usage_error)?,
        ))
    };
    let colour = colour() && !args.json;
    loop {
        let text = match &t {
            Target::Pg(c) => {
                let s = status::collect_postgres(c, &options).await?;
                if args.json {
                    serde_json::to_string_pretty(&s)?
                } else {
                    pg_text(&s, colour)
                }
            }
            Target::Redis(u) => {
                let s = status::collect_redis(u, &options).await?;
                if args.json {
                    serde_json::to_string_pretty(&s)?
                } else {
                    redis_text(&s, colour)
                }
            }
        };
        let Some(every) = args.watch else {
            println!("{}", text.trim_end());
            return Ok(0);
        };
        let mut stdout = std::io::stdout().lock();
        if stdout.is_terminal() {
            // Home the cursor and clear, so the view refreshes in place.
            let _ = write!(stdout, "\x1b[H\x1b[2J");
        }
        let _ = writeln!(stdout, "{}", text.trim_end());
        let _ = writeln!(stdout, "\n(refreshing every {every}s; Ctrl-C to stop)");
        let _ = stdout.flush();
        drop(stdout);
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(every.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

/// `pgharbor kill`: the list first, then what was done.
pub async fn kill(args: KillArgs) -> Result<u8, Failure> {
    let target = target_or_env(args.url);
    if is_redis(&target) {
        return Err(Failure::usage(
            "kill works on PostgreSQL sessions; for Redis use CLIENT KILL",
        ));
    }
    let config = ConnConfig::parse(&target)
        .map_err(Failure::usage_error)?
        .with_fallback_application_name("pgharbor kill");
    let options = KillOptions {
        idle_in_transaction_over: args.idle_in_transaction_over,
        running_over: args.running_over,
        action: if args.cancel {
            Some(KillAction::Cancel)
        } else if args.terminate {
            Some(KillAction::Terminate)
        } else {
            None
        },
        query_text: QueryText::shown_whole(args.show_query_text),
    };
    let (client, _task) = pgharbor_conn::connect(&config).await?;
    let mut found = pgharbor_health::kill::find(&client, &options)
        .await
        .map_err(|e| e.context(&config))?;
    let mut what = Vec::new();
    if let Some(d) = options.idle_in_transaction_over {
        what.push(format!(
            "idle in transaction over {}",
            format_secs(d.as_secs_f64())
        ));
    }
    if let Some(d) = options.running_over {
        what.push(format!("running over {}", format_secs(d.as_secs_f64())));
    }
    if !args.json {
        println!("{} session(s) {}:", found.len(), what.join(" or "));
        for c in &found {
            println!(
                "  {} pid {} {}@{} ({}{}) {} for {}: {}",
                c.action.verb(),
                c.pid,
                c.user,
                c.database,
                c.application_name,
                if c.client_addr.is_empty() {
                    String::new()
                } else {
                    format!(", {}", c.client_addr)
                },
                c.state,
                format_secs(c.seconds),
                one_line(&c.query, 60)
            );
        }
    }
    if args.dry_run {
        if args.json {
            crate::render::print_json(&serde_json::json!({"dry_run": true, "sessions": found}))?;
        } else {
            println!("dry run: nothing was done");
        }
        return Ok(0);
    }
    pgharbor_health::kill::act(&client, &options, &mut found).await;
    let failed = found
        .iter()
        .filter(|c| {
            c.done == Some(false)
                && c.note
                    .as_deref()
                    .is_some_and(|n| !n.starts_with("no longer"))
        })
        .count();
    if args.json {
        crate::render::print_json(&serde_json::json!({"dry_run": false, "sessions": found}))?;
    } else {
        for c in &found {
            match (c.done, &c.note) {
                (Some(true), _) => println!(
                    "{} pid {}",
                    match c.action {
                        KillAction::Cancel => "cancelled",
                        KillAction::Terminate => "terminated",
                    },
                    c.pid
                ),
                (_, Some(note)) => println!("pid {}: {note}", c.pid),
                _ => {}
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `pgharbor serve`: runs until Ctrl-C or SIGTERM. Refuses a non-loopback
/// address without credentials unless `--insecure-no-auth`.
pub async fn serve(args: ServeArgs) -> Result<u8, Failure> {
    let watch = Watchlist::load(&args.config).map_err(Failure::usage_error)?;
    for setting in &watch.literal_auth_secrets {
        eprintln!(
            "pgharbor serve: warning: [auth] {setting} is written in {}; prefer {{ env = \"…\" }} or {{ file = \"…\" }}",
            args.config.display()
        );
    }
    let listen = args
        .listen
        .or_else(|| watch.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8732".to_owned());
    let addrs = listen_addresses(&listen, &watch, args.insecure_no_auth).await?;
    let tls = watch
        .tls
        .as_ref()
        .map(|files| files.server_config())
        .transpose()
        .map_err(|e| {
            Failure::usage(format!(
                "{}: {}",
                args.config.display(),
                pgharbor_health::chain_text(&e)
            ))
        })?;
    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    for warning in pgharbor_health::auth::exposure_warnings(&local, &watch.auth, tls.is_some()) {
        eprintln!("pgharbor serve: warning: {warning}");
    }
    println!("{}", serve_banner(&watch, local, tls.is_some()));
    let _ = std::io::stdout().flush();
    let site = Arc::new(Site::new(Arc::new(Monitor::new(watch)), &listen));
    pgharbor_health::server::serve(site, listener, tls, pgharbor_schedule::shutdown_signal())
        .await?;
    Ok(0)
}

/// The addresses `listen` resolves to, once it is clear that serving there
/// is allowed (loopback, credentials, or `--insecure-no-auth`).
async fn listen_addresses(
    listen: &str,
    watch: &Watchlist,
    insecure_no_auth: bool,
) -> Result<Vec<std::net::SocketAddr>, Failure> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot resolve the listen address {listen}: {e}")))?
        .collect();
    pgharbor_health::auth::check_exposure(listen, &addrs, &watch.auth, insecure_no_auth)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(addrs)
}

/// The line `serve` prints once it listens (tests read the address from it).
fn serve_banner(watch: &Watchlist, local: std::net::SocketAddr, tls: bool) -> String {
    format!(
        "pgharbor serve: listening on {}://{local} ({} PostgreSQL, {} Redis, {} backup destination(s); / /metrics /healthz /api/status; {}; query texts {})",
        if tls { "https" } else { "http" },
        watch.postgres.len(),
        watch.redis.len(),
        watch.backups.len(),
        if watch.auth.protects_dashboard() {
            "credentials required"
        } else {
            "no authentication"
        },
        match watch.options.query_text {
            QueryText::Normalised => "normalised",
            QueryText::Full => "shown whole",
        }
    )
}
