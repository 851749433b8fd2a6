//! `zhilu user add / list / passwd / disable / enable`: what each says
//! (which database it read or wrote) and each error message, exactly.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use zhilu_store::{AuditEntry, SessionRow, Store};

/// Runs `zhilu` with `stdin` as its standard input: (exit code, stdout, stderr).
fn zhilu(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhilu"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zhilu");
    // A command that fails before it reads may close the pipe first.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh folder and the SQLite URL of a database in it (not yet made).
fn fresh(tag: &str) -> (Scratch, String) {
    let dir = std::env::temp_dir().join(format!("zhilu-user-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("z.db").display());
    (Scratch(dir), url)
}

/// `user add NAME --role ROLE` with a good password; must succeed.
fn add(url: &str, name: &str, role: &str) {
    let (code, _, err) = zhilu(
        &["user", "add", name, "--role", role, "--database", url],
        "long enough pw 1\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.trim(), format!("user {name} ({role}) created in {url}"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn add_says_which_database_and_refuses_a_taken_name() {
    let (_d, url) = fresh("add");
    add(&url, "ops1", "operator");
    let (code, _, err) = zhilu(
        &[
            "user",
            "add",
            "ops1",
            "--role",
            "viewer",
            "--database",
            &url,
        ],
        "long enough pw 1\n",
    );
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "zhilu: error: store: create_user: user \"ops1\" already exists"
    );
    let (code, _, err) = zhilu(
        &["user", "add", "ops2", "--role", "boss", "--database", &url],
        "long enough pw 1\n",
    );
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "zhilu: error: --role \"boss\": expected admin, operator or viewer"
    );
}

#[test]
fn list_shows_role_disabled_and_last_login() {
    let (d, url) = fresh("list");
    add(&url, "admin", "admin");
    add(&url, "ops.zhang", "operator");
    let rt = runtime();
    rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        s.append_audit(&AuditEntry {
            seq: 0,
            // 2026-12-08 07:25:40 UTC
            wall_ms: 1_796_714_740_000,
            actor: "ops.zhang".into(),
            action: "login".into(),
            target: "127.0.0.1".into(),
            detail: "{}".into(),
        })
        .await
        .unwrap();
        s.close().await;
    });
    let (code, _, _) = zhilu(&["user", "disable", "ops.zhang", "--database", &url], "");
    assert_eq!(code, 0);
    let (code, out, err) = zhilu(&["user", "list", "--database", &url], "");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let cols = |l: &str| {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cols(lines[0]),
        ["name", "role", "disabled", "created", "last login"]
    );
    let admin = cols(lines[1]);
    assert_eq!(admin[..3], ["admin", "admin", "no"]);
    assert!(admin[3].ends_with(" UTC"), "{out}");
    assert_eq!(admin[4], "never");
    let ops = cols(lines[2]);
    assert_eq!(ops[..3], ["ops.zhang", "operator", "yes"]);
    assert_eq!(ops[4], "2026-12-08 07:25:40 UTC");
    assert_eq!(err.trim(), format!("2 accounts in {url}"));
    drop(d);
}

#[test]
fn commands_on_a_missing_database_create_nothing() {
    let (d, _) = fresh("missing");
    let url = format!("sqlite://{}", d.path().join("nope").join("z.db").display());
    for args in [
        vec!["user", "list", "--database", &url],
        vec!["user", "passwd", "ops1", "--database", &url],
        vec!["user", "disable", "ops1", "--database", &url],
        vec!["user", "enable", "ops1", "--database", &url],
    ] {
        let (code, _, err) = zhilu(&args, "long enough pw 2\n");
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(
            err.trim(),
            format!("zhilu: error: store: cannot open `{url}`: no such database file"),
            "{args:?}"
        );
    }
    assert!(!d.path().join("nope").exists(), "no folder made");
    let (code, _, err) = zhilu(&["user", "list", "--config", "/nonexistent/zhilu.toml"], "");
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "zhilu: error: --config /nonexistent/zhilu.toml: no such file"
    );
}

#[test]
fn passwd_applies_the_rules_and_ends_sessions() {
    let (_d, url) = fresh("passwd");
    add(&url, "ops1", "operator");
    let rt = runtime();
    let session = |h: &str| SessionRow {
        token_hash: h.into(),
        user: "ops1".into(),
        role: String::new(),
        created_wall_ms: 0,
        expires_wall_ms: i64::MAX,
    };
    rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        s.create_session(&session("t1")).await.unwrap();
        s.create_session(&session("t2")).await.unwrap();
        s.close().await;
    });
    for (pw, why) in [
        (
            "short",
            "password must have at least 10 characters (not counting blanks at either end)",
        ),
        (
            "aaaaabbbbbb",
            "password must use at least 5 different characters",
        ),
        ("password password", "password is too easy to guess"),
        ("ops1 and more", "password must not contain the user name"),
    ] {
        let (code, _, err) = zhilu(
            &["user", "passwd", "ops1", "--database", &url],
            &format!("{pw}\n"),
        );
        assert_eq!(code, 2, "{pw}");
        assert_eq!(err.trim(), format!("zhilu: error: {why}"), "{pw}");
    }
    let (code, _, err) = zhilu(
        &["user", "passwd", "ghost", "--database", &url],
        "fog at K23 again\n",
    );
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        format!("zhilu: error: no user \"ghost\" in {url}")
    );

    let before = rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        let h = s.user("ops1").await.unwrap().unwrap().pw_hash;
        s.close().await;
        h
    });
    let (code, _, err) = zhilu(
        &["user", "passwd", "ops1", "--database", &url],
        "fog at K23 again\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.trim(),
        format!("password of ops1 changed in {url}; 2 sessions ended")
    );
    rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        let after = s.user("ops1").await.unwrap().unwrap().pw_hash;
        assert_ne!(after, before);
        assert!(zhilu_server::auth::verify_password(
            "fog at K23 again",
            &after
        ));
        assert_eq!(s.session("t1").await.unwrap(), None);
        assert_eq!(s.session("t2").await.unwrap(), None);
        s.close().await;
    });
}

#[test]
fn disable_and_enable() {
    let (_d, url) = fresh("disable");
    add(&url, "admin", "admin");
    add(&url, "ops1", "operator");
    let rt = runtime();
    rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        s.create_session(&SessionRow {
            token_hash: "t1".into(),
            user: "ops1".into(),
            role: String::new(),
            created_wall_ms: 0,
            expires_wall_ms: i64::MAX,
        })
        .await
        .unwrap();
        s.close().await;
    });
    let (code, _, err) = zhilu(&["user", "disable", "ops1", "--database", &url], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.trim(),
        format!("user ops1 disabled in {url}; 1 session ended")
    );
    let (code, _, err) = zhilu(&["user", "disable", "ghost", "--database", &url], "");
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        format!("zhilu: error: no user \"ghost\" in {url}")
    );
    let (code, _, err) = zhilu(&["user", "disable", "admin", "--database", &url], "");
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        format!(
            "zhilu: error: \"admin\" is the last enabled admin in {url}: add or enable another admin first"
        )
    );
    let disabled = |name: &str| {
        rt.block_on(async {
            let s = Store::open(&url).await.unwrap();
            let d = s.user(name).await.unwrap().unwrap().disabled;
            s.close().await;
            d
        })
    };
    assert!(disabled("ops1"));
    assert!(!disabled("admin"));
    let (code, _, err) = zhilu(&["user", "enable", "ops1", "--database", &url], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.trim(), format!("user ops1 enabled in {url}"));
    assert!(!disabled("ops1"));
}
