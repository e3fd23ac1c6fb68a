//! The word-count app: exact output bytes over a known input, and no input at all (refused).

use std::path::Path;

use xiebao_apps::WORDCOUNT_WASM;
use xiebao_apps::wordcount::COUNTS_FILE;

use crate::run;

/// Runs the app over `/in` from `input` and returns `counts.json`.
fn counts(input: Option<&Path>) -> String {
    let run = run(WORDCOUNT_WASM, &[], &[], input);
    assert_eq!(run.outcome.exit_code, 0, "{}", run.stderr());
    String::from_utf8(run.file(COUNTS_FILE).expect("counts written")).expect("UTF-8 JSON")
}

#[test]
fn counts_every_file_under_in_with_exact_bytes() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.txt"), "The cat sat.\nThe DOG, the cat!\n").unwrap();
    std::fs::create_dir(input.path().join("sub")).unwrap();
    // Not valid UTF-8 in the middle (a separator), and no newline at the end (still a line).
    std::fs::write(input.path().join("sub/b.md"), b"na\xc3\xafve\xffcaf\xc3\xa9 42 cat").unwrap();
    assert_eq!(
        counts(Some(input.path())),
        "{\"files\": 2, \"words\": 11, \"lines\": 3, \"bytes\": 50, \"top\": [[\"cat\", 3], \
         [\"the\", 3], [\"42\", 1], [\"café\", 1], [\"dog\", 1], [\"naïve\", 1], [\"sat\", 1]]}\n"
    );
}

#[test]
fn a_character_cut_by_a_read_is_still_one_word() {
    let input = tempfile::tempdir().unwrap();
    // The app reads 64 KiB at a time: the two bytes of "é" straddle the first boundary.
    let long = format!("{}É", "A".repeat(65_535));
    std::fs::write(input.path().join("long.txt"), format!("{long} x\n")).unwrap();
    let word = format!("{}é", "a".repeat(65_535));
    assert_eq!(
        counts(Some(input.path())),
        format!(
            "{{\"files\": 1, \"words\": 2, \"lines\": 1, \"bytes\": 65540, \"top\": [[\"{word}\", \
             1], [\"x\", 1]]}}\n"
        )
    );
}

#[test]
fn no_input_file_at_all_is_refused_with_how_to_give_one() {
    let empty = tempfile::tempdir().unwrap();
    for input in [None, Some(empty.path())] {
        let run = run(WORDCOUNT_WASM, &[], &[], input);
        assert_eq!(run.outcome.exit_code, 2, "{}", run.stderr());
        assert!(run.stderr().contains("no input files: give them with"), "{}", run.stderr());
        assert!(run.file(COUNTS_FILE).is_none(), "nothing written");
    }
}

#[test]
fn in_a_bag_with_one_task_per_input_file_each_task_counts_its_own_chunk() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("c1.txt"), "a b\n").unwrap();
    std::fs::write(input.path().join("c2.txt"), "c d e\n").unwrap();
    let env = [
        ("IEXEC_INPUT_FILES_NUMBER", "2"),
        ("IEXEC_INPUT_FILE_NAME_1", "c1.txt"),
        ("IEXEC_INPUT_FILE_NAME_2", "c2.txt"),
        ("IEXEC_BOT_SIZE", "2"),
        ("IEXEC_BOT_TASK_INDEX", "1"),
    ];
    let run = run(WORDCOUNT_WASM, &[], &env, Some(input.path()));
    assert_eq!(run.outcome.exit_code, 0, "{}", run.stderr());
    let counts = String::from_utf8(run.file(COUNTS_FILE).unwrap()).unwrap();
    assert!(counts.starts_with("{\"files\": 1, \"words\": 3,"), "task 1 counts c2.txt: {counts}");
    // A bag of another size counts every file.
    let env = [env[0], env[1], env[2], ("IEXEC_BOT_SIZE", "3"), ("IEXEC_BOT_TASK_INDEX", "1")];
    let run = crate::run(WORDCOUNT_WASM, &[], &env, Some(input.path()));
    let counts = String::from_utf8(run.file(COUNTS_FILE).unwrap()).unwrap();
    assert!(counts.starts_with("{\"files\": 2, \"words\": 5,"), "{counts}");
}
