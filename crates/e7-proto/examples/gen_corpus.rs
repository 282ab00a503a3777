//! Writes the seed corpus for the `nla_parse` fuzz target: valid messages of every shape, made
//! with this crate's emitters, and hand-broken ones.
//!
//! ```text
//! cargo run -q -p e7-proto --example gen_corpus -- fuzz/corpus/nla_parse
//! ```
//!
//! Each file is an attribute block (the bytes after the genl header); the fuzz target and the
//! replay test parse it under every command byte.

use std::path::PathBuf;

use e7_proto::msg::{
    emit_error, emit_event, emit_get_reply, emit_query_chain, emit_query_dump, ClearSpec,
    QueryHeader, Request, RuleSpec,
};
use e7_proto::nla::Writer;
use e7_proto::{Action, Attr, EventState, Flag, Mode};

fn emit(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut w = Writer::new(&mut buf);
    f(&mut w);
    w.as_bytes().to_vec()
}

fn request(r: Request<'_>) -> Vec<u8> {
    emit(|w| r.emit(w).expect("corpus request fits"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: gen_corpus DIR")?
        .into();
    std::fs::create_dir_all(&dir)?;
    let rules = [
        RuleSpec {
            prot: 6,
            path: "/usr/bin/curl",
            action: Action::Allow,
        },
        RuleSpec {
            prot: u32::MAX,
            path: "/opt/",
            action: Action::Block,
        },
        RuleSpec {
            prot: 58,
            path: "/bin/ping",
            action: Action::Allow,
        },
    ];
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("valid-add-rule", request(Request::AddRule(rules[0]))),
        ("valid-folder-rule", request(Request::AddRule(rules[1]))),
        (
            "valid-clear-state",
            request(Request::Clear(ClearSpec::Action(Action::Block))),
        ),
        (
            "valid-set-flag",
            request(Request::Set {
                flag: Flag::UnkRule,
                value: Action::Block.value(),
            }),
        ),
        (
            "valid-get-flag",
            request(Request::Get { flag: Flag::Uptime }),
        ),
        ("valid-empty", request(Request::SetMode(Mode::Enabled))),
        (
            "valid-get-reply",
            emit(|w| emit_get_reply(w, Flag::Mode, Mode::Enabled.value()).unwrap()),
        ),
        (
            "valid-event",
            emit(|w| emit_event(w, EventState::Pending, 17, b"/usr/bin/dig").unwrap()),
        ),
        (
            "valid-error",
            emit(|w| {
                emit_error(w, Some(22), Some("value 7 is not valid for flag `mode`")).unwrap()
            }),
        ),
        (
            "valid-query-chain",
            emit(|w| {
                emit_query_chain(w, Mode::Enabled.value(), rules, 3).unwrap();
            }),
        ),
        (
            "valid-query-dump",
            emit(|w| {
                emit_query_dump(
                    w,
                    Some(QueryHeader {
                        mode: Mode::Block.value(),
                        count: 3,
                    }),
                    rules,
                )
                .unwrap();
            }),
        ),
    ];
    // Broken ones.
    let add = files[0].1.clone();
    files.push(("invalid-truncated", add[..add.len() - 3].to_vec()));
    let mut short_len = add.clone();
    short_len[0] = 2; // nla_len < 4
    files.push(("invalid-short-len", short_len));
    let mut no_nul = request(Request::AddRule(RuleSpec {
        prot: 6,
        path: "/abc",
        action: Action::Allow,
    }));
    let n = no_nul.len();
    no_nul[n - 4..].copy_from_slice(b"defg"); // overwrite NUL + padding
    files.push(("invalid-path-no-nul", no_nul));
    // BLOCK/ALLOW/CLEAR with PROT = tcp but no PATH: refused, a rule without a path never matches.
    files.push((
        "invalid-protocol-only",
        emit(|w| w.put_u32(Attr::Prot.value(), 6).unwrap()),
    ));
    let mut bad_value = request(Request::Set {
        flag: Flag::Mode,
        value: Mode::Enabled.value(),
    });
    let n = bad_value.len();
    bad_value[n - 4..].copy_from_slice(&7u32.to_ne_bytes());
    files.push(("invalid-set-value", bad_value));
    let chain = files[9].1.clone();
    files.push(("invalid-chain-cut", chain[..chain.len() / 2].to_vec()));
    files.push((
        "invalid-trailing-bytes",
        [add.as_slice(), &[1, 2, 3]].concat(),
    ));
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes)?;
    }
    eprintln!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
