//! A task app for the runtime's tests; its first argument picks a behaviour.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("copy");
    match mode {
        // Reads /in/input.txt, writes it upper-cased with the other args to /out/result.txt.
        "copy" => {
            let input = std::fs::read_to_string("/in/input.txt").unwrap_or_default();
            let mut text = input.to_uppercase();
            for arg in &args[2..] {
                text.push_str(arg);
            }
            std::fs::create_dir_all("/out/sub").unwrap();
            std::fs::write("/out/result.txt", text).unwrap();
            std::fs::write("/out/sub/n.txt", format!("{}", args.len())).unwrap();
            println!("copied");
        }
        // What the sandbox gives for time and randomness.
        "env" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut map = std::collections::HashMap::<u32, u32>::new();
            map.insert(1, 2);
            let hasher_seed = format!("{:?}", map.iter().collect::<Vec<_>>());
            let mut file = std::fs::File::create("/out/env.txt").unwrap();
            writeln!(file, "now={now} {hasher_seed} var={:?}", std::env::var("IEXEC_TASK_ID").ok()).unwrap();
        }
        "escape" => {
            let verdict = match std::fs::read("/etc/passwd") {
                Ok(_) => "read",
                Err(_) => "denied",
            };
            let write_in = match std::fs::write("/in/x", "x") {
                Ok(()) => "wrote",
                Err(_) => "denied",
            };
            std::fs::write("/out/escape.txt", format!("{verdict} {write_in}")).unwrap();
        }
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let v: Vec<u8> = vec![1; 512 << 20];
            std::hint::black_box(v);
        }
        "big" => {
            std::fs::write("/out/big.bin", vec![7u8; 3 << 20]).unwrap();
        }
        // Writes 1 MiB at a time to /out/fill.bin, up to 128 MiB, then runs until stopped.
        "fill" => {
            let mut file = std::fs::File::create("/out/fill.bin").unwrap();
            let chunk = vec![7u8; 1 << 20];
            for _ in 0..128 {
                file.write_all(&chunk).unwrap();
            }
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        // Creates up to 5,000 empty files, then runs until stopped.
        "files" => {
            for i in 0..5_000 {
                std::fs::write(format!("/out/f{i}"), b"").unwrap();
            }
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        // 200,000 bytes on stdout (lines of 100), one line on stderr, then a normal exit.
        "chatty" => {
            let line = format!("{}\n", "x".repeat(99));
            let mut out = std::io::stdout().lock();
            for _ in 0..2_000 {
                out.write_all(line.as_bytes()).unwrap();
            }
            out.flush().unwrap();
            eprintln!("done");
            std::fs::write("/out/ok.txt", b"ok").unwrap();
        }
        "exit" => {
            eprintln!("failing on purpose");
            std::process::exit(args.get(2).and_then(|c| c.parse().ok()).unwrap_or(3));
        }
        "panic" => panic!("boom"),
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
