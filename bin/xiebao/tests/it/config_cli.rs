//! `--chain NAME` and the config file: a chain's endpoints, their precedence (flag, then
//! environment, then chain, then built-in default), and the errors that name the file.

use std::path::Path;

use crate::Run;

/// A temporary config file and the directory commands run in.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup { dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("xiebao").join("config.toml")
    }

    /// Runs `xiebao args…` in the temporary directory with this config file and `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let config = self.config();
        let mut vars: Vec<(&str, &Path)> = vec![("XIEBAO_CONFIG", config.as_path())];
        vars.extend(env.iter().map(|(k, v)| (*k, Path::new(v))));
        // The devnet chain is read from ./xiebao-devnet: run where the test may put one.
        crate::xiebao_in(self.dir.path(), args, &vars)
    }

    /// `xiebao config show --json` with extra arguments and environment.
    fn show(&self, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
        let mut all = vec!["config", "show", "--json"];
        all.extend_from_slice(args);
        let run = self.run(&all, env);
        assert!(run.ok, "config show {args:?}: {}", run.stderr);
        serde_json::from_str(&run.stdout).expect(&run.stdout)
    }
}

/// A loopback URL nothing listens on (bound, then released).
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_chain_sets_the_endpoints_and_flags_then_environment_still_win() {
    let setup = Setup::new();
    let (testnet_rpc, other_rpc) = (dead_url(), dead_url());
    let run = setup.run(
        &[
            "config",
            "set-chain",
            "testnet",
            "--rpc",
            &testnet_rpc,
            "--scheduler",
            "ws://127.0.0.1:7000",
            "--default",
            "--json",
        ],
        &[],
    );
    assert!(run.ok, "{}", run.stderr);
    let saved: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(saved["default"], true);
    assert!(setup.config().exists(), "set-chain creates the file and its folder");
    let run = setup.run(&["config", "set-chain", "other", "--rpc", &other_rpc], &[]);
    assert!(run.ok, "{}", run.stderr);

    // The file's default chain.
    let shown = setup.show(&[], &[]);
    assert_eq!(shown["chain"]["name"], "testnet");
    assert_eq!(shown["chain"]["from"], "default_chain");
    assert_eq!(shown["endpoints"]["rpc"]["value"], testnet_rpc.as_str());
    assert_eq!(shown["endpoints"]["rpc"]["source"], "chain");
    assert_eq!(shown["endpoints"]["scheduler"]["value"], "ws://127.0.0.1:7000");
    assert_eq!(shown["endpoints"]["ethereum"]["source"], "default");
    assert_eq!(shown["endpoints"]["results"]["source"], "unset");
    assert_eq!(shown["chains"], serde_json::json!(["other", "testnet"]));
    // XIEBAO_CHAIN beats default_chain, --chain beats XIEBAO_CHAIN.
    let shown = setup.show(&[], &[("XIEBAO_CHAIN", "other")]);
    assert_eq!(shown["chain"]["from"], "XIEBAO_CHAIN");
    assert_eq!(shown["endpoints"]["rpc"]["value"], other_rpc.as_str());
    let shown = setup.show(&["--chain", "testnet"], &[("XIEBAO_CHAIN", "other")]);
    assert_eq!(shown["chain"]["from"], "--chain");
    assert_eq!(shown["endpoints"]["rpc"]["value"], testnet_rpc.as_str());
    // The environment variable beats the chain; the flag beats the environment variable.
    let shown = setup.show(&["--chain=other"], &[("XIEBAO_RPC", "http://env.example:1")]);
    assert_eq!(shown["endpoints"]["rpc"]["value"], "http://env.example:1");
    assert_eq!(shown["endpoints"]["rpc"]["source"], "env");
    let shown = setup.show(
        &["--chain", "other", "--rpc", "http://flag.example:1"],
        &[("XIEBAO_RPC", "http://env.example:1")],
    );
    assert_eq!(shown["endpoints"]["rpc"]["value"], "http://flag.example:1");
    assert_eq!(shown["endpoints"]["rpc"]["source"], "flag");

    // A real command goes where `config show` says, in the same order.
    let asks = |run: &Run, url: &str| {
        assert!(!run.ok);
        assert!(run.stderr.contains(&format!("asking {url} for its status")), "{}", run.stderr);
    };
    asks(&setup.run(&["chain", "status"], &[]), &testnet_rpc);
    asks(&setup.run(&["chain", "status", "--chain", "other"], &[]), &other_rpc);
    let env_rpc = dead_url();
    asks(
        &setup.run(&["--chain", "other", "chain", "status"], &[("XIEBAO_RPC", &env_rpc)]),
        &env_rpc,
    );
    let flag_rpc = dead_url();
    asks(
        &setup.run(
            &["chain", "status", "--chain", "other", "--rpc", &flag_rpc],
            &[("XIEBAO_RPC", &env_rpc)],
        ),
        &flag_rpc,
    );

    // set-chain changes what it is given and keeps the rest.
    let run = setup.run(&["config", "set-chain", "testnet", "--rpc", &other_rpc], &[]);
    assert!(run.ok, "{}", run.stderr);
    let shown = setup.show(&[], &[]);
    assert_eq!(shown["endpoints"]["rpc"]["value"], other_rpc.as_str());
    assert_eq!(shown["endpoints"]["scheduler"]["value"], "ws://127.0.0.1:7000");
}

#[test]
fn an_unknown_chain_is_named_with_the_file_and_the_chains_it_has() {
    let setup = Setup::new();
    let run = setup.run(&["--chain", "mainnet", "chain", "status"], &[]);
    assert!(!run.ok);
    let path = setup.config();
    assert!(
        run.stderr.contains(&format!(
            "--chain mainnet: no such chain: the config file {} does not exist",
            path.display()
        )),
        "{}",
        run.stderr
    );
    for name in ["alpha", "beta"] {
        let run = setup.run(&["config", "set-chain", name, "--rpc", "http://127.0.0.1:1"], &[]);
        assert!(run.ok, "{}", run.stderr);
    }
    let run = setup.run(
        &["account", "show", "0x0101010101010101010101010101010101010101"],
        &[("XIEBAO_CHAIN", "mainnet")],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains(&format!(
            "error: XIEBAO_CHAIN=mainnet: no such chain in {} (it has alpha, beta; devnet is built in); add it with `xiebao config set-chain mainnet --rpc URL`",
            path.display()
        )),
        "{}",
        run.stderr
    );
    // `config set-chain` still works, to add it.
    let run = setup.run(
        &["config", "set-chain", "mainnet", "--rpc", "https://rpc.example"],
        &[("XIEBAO_CHAIN", "mainnet")],
    );
    assert!(run.ok, "{}", run.stderr);
}

#[test]
fn a_malformed_config_file_is_named_with_the_toml_error() {
    let setup = Setup::new();
    std::fs::create_dir_all(setup.config().parent().unwrap()).unwrap();
    std::fs::write(setup.config(), "[chains.testnet]\nrcp = \"http://127.0.0.1:1\"\n").unwrap();
    let run = setup.run(&["chain", "status"], &[]);
    assert!(!run.ok);
    let message = format!("{}: not a valid xiebao config file", setup.config().display());
    assert!(run.stderr.contains(&message), "{}", run.stderr);
    assert!(run.stderr.contains("line 2, column 1"), "{}", run.stderr);
    assert!(run.stderr.contains("unknown field `rcp`"), "{}", run.stderr);
    let run = setup.run(&["config", "set-chain", "x", "--rpc", "http://127.0.0.1:1"], &[]);
    assert!(!run.ok && run.stderr.contains(&message), "{}", run.stderr);
}

#[test]
fn the_devnet_chain_is_the_devnet_of_the_current_directory() {
    let setup = Setup::new();
    // No devnet here: the chain is empty and the built-in defaults stay.
    let shown = setup.show(&["--chain", "devnet"], &[]);
    assert_eq!(shown["chain"]["origin_exists"], false);
    assert_eq!(shown["endpoints"]["rpc"]["source"], "default");
    let dir = setup.dir.path().join("xiebao-devnet");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("devnet.json"),
        r#"{"rpc":["http://127.0.0.1:9101","http://127.0.0.1:9102"],"results_listen":"127.0.0.1:9200","scheduler_listen":"127.0.0.1:9300"}"#,
    )
    .unwrap();
    let shown = setup.show(&["--chain", "devnet"], &[]);
    assert_eq!(shown["chain"]["origin"], dir.join("devnet.json").to_str().unwrap());
    assert_eq!(shown["endpoints"]["rpc"]["value"], "http://127.0.0.1:9101");
    assert_eq!(shown["endpoints"]["rpc"]["source"], "chain");
    assert_eq!(shown["endpoints"]["scheduler"]["value"], "ws://127.0.0.1:9300");
    assert_eq!(shown["endpoints"]["results"]["value"], "http://127.0.0.1:9200");
    // A chain of the file named devnet is the user's choice, and wins.
    let run = setup.run(&["config", "set-chain", "devnet", "--rpc", "http://10.1.1.1:8545"], &[]);
    assert!(run.ok, "{}", run.stderr);
    let shown = setup.show(&["--chain", "devnet"], &[]);
    assert_eq!(shown["endpoints"]["rpc"]["value"], "http://10.1.1.1:8545");
}
