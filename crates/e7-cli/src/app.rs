//! Dispatch of the subcommands: what needs the kernel, what does not, and how results and errors
//! are printed.
//!
//! Everything that can be checked without the kernel is checked first (command-line syntax, whole
//! scripts), so a typo is exit code 2 even on a machine without the module, and nothing half-done
//! is left in the kernel because of it.

use crate::cli::{Cli, Cmd, Filter};
use crate::error::{CliError, EXIT_OK};
use crate::exec::{self, render_notice};
use crate::grammar::{self, Statement};
use crate::kernel::{self, Kernel, Notice, Op};
use crate::netlink::NetlinkKernel;
use crate::script::{self, Script};
use crate::{save, shell, signals};
use clap::CommandFactory;
use e7_proto::{Flag, ValueClass};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// Print an error on stderr (JSON when asked) and return its exit code.
pub fn report_error(e: &CliError, as_json: bool) -> u8 {
    if as_json {
        eprintln!(
            "{}",
            json!({ "error": e.to_string(), "exit": e.exit_code() })
        );
    } else {
        eprintln!("e7: {e}");
    }
    e.exit_code()
}

fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Run the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let json = cli.json;
    let result = match cli.command.unwrap_or(Cmd::Shell) {
        Cmd::Check { files } => return check(&files),
        Cmd::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "e7", &mut std::io::stdout());
            return EXIT_OK;
        }
        Cmd::Manpage { dir } => manpage(dir.as_deref()),
        Cmd::Run { file, quiet } => return run_script(&file, json, quiet),
        Cmd::Shell => {
            let blocked = signals::block();
            match NetlinkKernel::connect() {
                Ok(mut k) => {
                    if let Some(b) = blocked {
                        signals::spawn_handler(b, k.disconnect_sender());
                    }
                    return shell::run(&mut k, json);
                }
                Err(e) => Err(e),
            }
        }
        Cmd::Monitor { count, timeout } => monitor(json, count, timeout),
        Cmd::Status => NetlinkKernel::connect().and_then(|mut k| status(&mut k, json)),
        Cmd::Stats => NetlinkKernel::connect().and_then(|mut k| stats_cmd(&mut k, json)),
        Cmd::Top { interval, count } => top_options(interval, count).and_then(|opts| {
            NetlinkKernel::connect().and_then(|mut k| crate::top::run(&mut k, opts))
        }),
        Cmd::Save { file } => NetlinkKernel::connect().and_then(|mut k| {
            let snap = save::save(&mut k, &file)?;
            let text = format!(
                "saved {} rules and {} flags to {}",
                snap.rules.rules.len(),
                snap.flags.len() + 1,
                file.display()
            );
            if json {
                print_line(
                    &json!({ "saved": file.display().to_string(),
                             "rules": snap.rules.rules.len() })
                    .to_string(),
                );
            } else {
                print_line(&text);
            }
            Ok(())
        }),
        one_shot => match one_shot_statement(one_shot) {
            Ok(stmt) => {
                NetlinkKernel::connect().and_then(|mut k| one_shot_run(&mut k, &stmt, json))
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => report_error(&e, json),
    }
}

/// The console statement a one-shot subcommand stands for (validated before connecting).
pub fn one_shot_statement(cmd: Cmd) -> Result<Statement, CliError> {
    let mut tokens: Vec<String> = Vec::new();
    match cmd {
        Cmd::Allow { args } => {
            tokens.push("allow".into());
            tokens.extend(args);
        }
        Cmd::Block { args } => {
            tokens.push("block".into());
            tokens.extend(args);
        }
        Cmd::Clear { args } => {
            tokens.push("clear".into());
            tokens.extend(args);
        }
        Cmd::Enable => tokens.push("enable".into()),
        Cmd::Disable => tokens.push("disable".into()),
        Cmd::Set { flag, value } => tokens.extend(["set".into(), flag, value]),
        Cmd::Get { flag } => tokens.extend(["get".into(), flag]),
        Cmd::Query { filter } => {
            tokens.push("query".into());
            match filter {
                Some(Filter::Allow) => tokens.push("allow".into()),
                Some(Filter::Block) => tokens.push("block".into()),
                None => {}
            }
        }
        other => {
            return Err(CliError::Failed(format!(
                "internal: {other:?} is not a one-shot command"
            )))
        }
    }
    Ok(grammar::parse_tokens(&tokens)?)
}

/// Execute one statement and print its result.
pub fn one_shot_run(kernel: &mut dyn Kernel, stmt: &Statement, json: bool) -> Result<(), CliError> {
    let report = exec::execute(kernel, stmt)?;
    if let Some(text) = report.render(json) {
        print_line(&text);
    }
    Ok(())
}

fn check(files: &[String]) -> u8 {
    let mut code = EXIT_OK;
    for file in files {
        match Script::load(file) {
            Ok(s) => {
                let diags = s.check();
                for d in diags.iter().chain(&s.notes()) {
                    eprintln!("{d}");
                }
                code = code.max(script::check_exit_code(&diags));
            }
            Err(e) => {
                eprintln!("e7: {e}");
                code = code.max(e.exit_code());
            }
        }
    }
    code
}

fn run_script(file: &str, json: bool, quiet: bool) -> u8 {
    let script = match Script::load(file) {
        Ok(s) => s,
        Err(e) => return report_error(&e, json),
    };
    // Syntax first: no kernel needed to find a typo, and nothing is applied if there is one.
    if let Err(diags) = script.parse() {
        for d in &diags {
            eprintln!("{d}");
        }
        return crate::error::EXIT_USAGE;
    }
    let mut kernel = match NetlinkKernel::connect() {
        Ok(k) => k,
        Err(e) => return report_error(&e, json),
    };
    run_script_with(&script, &mut kernel, json, quiet)
}

/// Execute a loaded script against `kernel`, printing each line's result (with `quiet`, only the
/// results of reading lines: query, get, help); the exit code.
pub fn run_script_with(script: &Script, kernel: &mut dyn Kernel, json: bool, quiet: bool) -> u8 {
    let result = script.run(kernel, &mut |report| {
        if quiet && !report.is_reading() {
            return;
        }
        if let Some(text) = report.render(json) {
            print_line(&text);
        }
    });
    match result {
        Ok(_) => EXIT_OK,
        Err(failure) => {
            for m in failure.messages() {
                eprintln!("{m}");
            }
            failure.exit_code()
        }
    }
}

fn manpage(dir: Option<&std::path::Path>) -> Result<(), CliError> {
    let cmd = Cli::command();
    let io = |e: std::io::Error| CliError::Failed(format!("cannot write the man page: {e}"));
    match dir {
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(io),
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io)?;
            clap_mangen::generate_to(cmd, dir).map_err(io)?;
            print_line(&format!("man pages written to {}", dir.display()));
            Ok(())
        }
    }
}

/// Render a duration in seconds as `1d 02:03:04`.
pub fn uptime_text(secs: u32) -> String {
    let (d, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The module version from sysfs (`/sys/module/e7/version`), if the module exposes one.
pub fn module_version() -> Option<String> {
    std::fs::read_to_string("/sys/module/e7/version")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `e7 stats`: the per-program statistics, sorted by traffic; with `--json` one object per
/// program per line.
pub fn stats_cmd(kernel: &mut dyn Kernel, json: bool) -> Result<(), CliError> {
    let mut list = kernel::stats(kernel)?;
    crate::stats::sort_by_traffic(&mut list);
    let rules = kernel::query(kernel).ok();
    if json {
        for s in &list {
            print_line(&crate::stats::stat_json(s, rules.as_ref()).to_string());
        }
    } else {
        let text = crate::stats::table(&list, rules.as_ref());
        print_line(text.trim_end());
    }
    Ok(())
}

/// `e7 top`'s options, checked before connecting.
fn top_options(interval: f64, count: Option<u64>) -> Result<crate::top::Options, CliError> {
    if !(interval.is_finite() && (0.1..=3600.0).contains(&interval)) {
        return Err(CliError::Syntax(crate::error::SyntaxError::new(format!(
            "--interval {interval}: expected seconds between 0.1 and 3600"
        ))));
    }
    Ok(crate::top::Options {
        interval: Duration::from_secs_f64(interval),
        count,
    })
}

/// `e7 status`.
pub fn status(kernel: &mut dyn Kernel, json: bool) -> Result<(), CliError> {
    let rules = kernel::query(kernel)?;
    let mut flags = Vec::new();
    for flag in Flag::ALL.iter().copied() {
        flags.push((flag, kernel::get(kernel, flag)?));
    }
    let version = module_version();
    let uptime = flags
        .iter()
        .find(|(f, _)| *f == Flag::Uptime)
        .map_or(0, |(_, v)| *v);
    if json {
        let mut map = serde_json::Map::new();
        for (flag, value) in &flags {
            let v = if flag.class() == ValueClass::ReadOnly {
                json!(value)
            } else {
                json!(grammar::value_word(*flag, *value))
            };
            map.insert(flag.alias().to_string(), v);
        }
        print_line(
            &json!({
                "version": version,
                "mode": grammar::value_word(Flag::Mode, rules.mode),
                "rules": rules.rules.len(),
                "uptime": uptime,
                "flags": map,
            })
            .to_string(),
        );
    } else {
        let mut out = String::new();
        out.push_str(&format!(
            "module   e7 {}\n",
            version.as_deref().unwrap_or("(version unknown)")
        ));
        out.push_str(&format!(
            "mode     {}\n",
            grammar::value_word(Flag::Mode, rules.mode)
        ));
        out.push_str(&format!("rules    {}\n", rules.rules.len()));
        out.push_str(&format!("uptime   {} ({uptime} s)\n", uptime_text(uptime)));
        out.push_str("flags");
        for (flag, value) in &flags {
            if *flag == Flag::Mode || *flag == Flag::Uptime {
                continue;
            }
            out.push_str(&format!(
                "\n  {:<9}{}",
                flag.alias(),
                grammar::value_word(*flag, *value)
            ));
        }
        print_line(&out);
    }
    Ok(())
}

fn monitor(json: bool, count: Option<u64>, timeout: Option<f64>) -> Result<(), CliError> {
    let timeout = match timeout {
        Some(t) if !(t.is_finite() && t >= 0.0) => {
            return Err(CliError::syntax(format!(
                "--timeout {t}: expected a number of seconds >= 0"
            )))
        }
        Some(t) => Some(Duration::from_secs_f64(t.min(1e9))),
        None => None,
    };
    let blocked = signals::block();
    let mut kernel = NetlinkKernel::connect()?;
    if let Some(b) = blocked {
        signals::spawn_handler(b, kernel.disconnect_sender());
    }
    let notices = kernel
        .notices()
        .ok_or_else(|| CliError::Failed("internal: event stream already taken".into()))?;
    kernel.call(&Op::Subscribe)?;
    let result = monitor_loop(&notices, &mut kernel, json, count, timeout);
    let _ = kernel.call(&Op::Disconnect);
    result
}

/// How often `monitor` checks that the module is still there (its DISCONNECT at unload can be
/// lost when the socket buffer overflows with events).
pub const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

/// Print notices until `count` events, `timeout`, or the kernel goes away. Every
/// [`LIVENESS_INTERVAL`], and right after lost events, `kernel.check_alive()` is asked whether the
/// module is still there.
pub fn monitor_loop(
    notices: &std::sync::mpsc::Receiver<Notice>,
    kernel: &mut dyn Kernel,
    json: bool,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> Result<(), CliError> {
    use std::sync::mpsc::RecvTimeoutError;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut seen = 0u64;
    if count == Some(0) {
        return Ok(());
    }
    let mut next_check = Instant::now() + LIVENESS_INTERVAL;
    loop {
        let now = Instant::now();
        if now >= next_check {
            kernel.check_alive()?;
            next_check = now + LIVENESS_INTERVAL;
        }
        let wake = deadline.map_or(next_check, |d| d.min(next_check));
        let notice = match notices.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(n) => n,
            Err(RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return match count {
                        Some(c) => Err(CliError::Failed(format!(
                            "timed out: {seen} of {c} events within the timeout"
                        ))),
                        None => Ok(()),
                    };
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(CliError::Failed("the event stream ended".into()))
            }
        };
        print_line(&render_notice(&notice, json));
        match notice {
            Notice::Event(_) => {
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    return Ok(());
                }
            }
            // A DISCONNECT may have been among the lost messages.
            Notice::Lost => next_check = Instant::now(),
            Notice::Disconnected => {
                return Err(CliError::Failed(
                    "the kernel disconnected (the e7 module is being unloaded)".into(),
                ))
            }
            Notice::Failed(m) => return Err(CliError::Failed(m)),
        }
    }
}
