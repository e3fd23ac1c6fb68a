//! The Mandelbrot app: determinism, argument checks, and tiles that assemble into the picture.

use xiebao_apps::mandelbrot::{TASK_INDEX_ENV, TILE_FILE, Tiling};
use xiebao_apps::{AppError, MANDELBROT_WASM};

use crate::{Run, run};

/// Renders the tile of task `index` for `params`.
fn render(params: &str, index: u64) -> Run {
    let args: Vec<&str> = params.split_ascii_whitespace().collect();
    let index = index.to_string();
    run(MANDELBROT_WASM, &args, &[(TASK_INDEX_ENV, &index)], None)
}

/// Every tile of `tiling`, rendered by the app.
fn render_all(tiling: &Tiling) -> Vec<(u64, Vec<u8>)> {
    (0..tiling.tasks())
        .map(|index| {
            let run = render(&tiling.params(), index);
            assert_eq!(run.outcome.exit_code, 0, "task {index}: {}", run.stderr());
            (index, run.file(TILE_FILE).expect("tile written"))
        })
        .collect()
}

/// The RGB pixels and size of a PNG.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut pixels).expect("PNG data");
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// A PPM tile of one colour.
fn ppm(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut bytes = format!("P6\n{width} {height}\n255\n").into_bytes();
    for _ in 0..width * height {
        bytes.extend_from_slice(&rgb);
    }
    bytes
}

#[test]
fn a_tile_renders_to_the_same_bytes_every_time() {
    let first = render("64 48 2 2", 3);
    let second = render("64 48 2 2", 3);
    assert_eq!(first.outcome.exit_code, 0, "{}", first.stderr());
    let tile = first.file(TILE_FILE).expect("tile written");
    assert!(tile.starts_with(b"P6\n32 24\n255\n"));
    assert_eq!(tile.len(), "P6\n32 24\n255\n".len() + 32 * 24 * 3);
    assert_eq!(second.file(TILE_FILE), Some(tile));
    assert_eq!(first.outcome.fuel_used, second.outcome.fuel_used);
}

#[test]
fn tiles_assemble_into_the_picture_rendered_whole() {
    let whole = Tiling::new(64, 48, 1, 1, 256).unwrap();
    let single = render_all(&whole);
    let (width, height, reference) = decode_png(&whole.assemble(&single).unwrap());
    assert_eq!((width, height), (64, 48));
    // The picture is not one colour, so a misplaced tile would show.
    assert!(reference.chunks_exact(3).any(|pixel| pixel != &reference[..3]));
    let header = "P6\n64 48\n255\n".len();
    assert_eq!(reference, single[0].1[header..]);
    for (tiles_x, tiles_y) in [(2, 2), (4, 3), (1, 6)] {
        let tiling = Tiling::new(64, 48, tiles_x, tiles_y, 256).unwrap();
        let mut tiles = render_all(&tiling);
        tiles.reverse();
        let (w, h, pixels) = decode_png(&tiling.assemble(&tiles).unwrap());
        assert_eq!((w, h), (64, 48));
        assert!(pixels == reference, "{tiles_x} x {tiles_y} tiles differ from the whole picture");
    }
}

#[test]
fn bad_arguments_and_task_indices_exit_2_naming_the_problem() {
    let check = |args: &[&str], index: Option<&str>, message: &str| {
        let env: Vec<(&str, &str)> = index.map(|i| (TASK_INDEX_ENV, i)).into_iter().collect();
        let run = run(MANDELBROT_WASM, args, &env, None);
        assert_eq!(run.outcome.exit_code, 2, "{args:?} {index:?}: {}", run.stderr());
        assert!(run.stderr().contains(message), "{args:?}: {:?} lacks {message:?}", run.stderr());
        assert_eq!(run.file(TILE_FILE), None);
    };
    let ok = ["64", "48", "2", "2"];
    check(&ok, Some("4"), "task index 4 (IEXEC_BOT_TASK_INDEX) is out of range");
    check(&ok, Some("-1"), "IEXEC_BOT_TASK_INDEX must be a non-negative integer, got \"-1\"");
    check(&ok, None, "IEXEC_BOT_TASK_INDEX is not set");
    check(&["64", "48", "2"], Some("0"), "missing argument TILES_Y");
    check(&["64", "tall", "2", "2"], Some("0"), "HEIGHT must be an integer from 1 to 8192");
    check(&["8193", "48", "1", "1"], Some("0"), "WIDTH must be an integer from 1 to 8192");
    check(&["64", "48", "3", "2"], Some("0"), "WIDTH 64 is not divisible by TILES_X 3");
    check(&["64", "48", "2", "5"], Some("0"), "HEIGHT 48 is not divisible by TILES_Y 5");
    check(&["64", "48", "2", "2", "0"], Some("0"), "MAX_ITER must be an integer from 1 to 65536");
    check(&["8192", "8192", "256", "128"], Some("0"), "at most 16384 tiles");
    check(&["4096", "2048", "1", "1"], Some("0"), "above the limit of 4194304");
    check(&["64", "48", "2", "2", "9", "9"], Some("0"), "at most 5 arguments");
    // The host refuses the same tilings.
    assert!(Tiling::parse_params("8192 8192 256 128").is_err());
    assert!(Tiling::parse_params("4096 2048 1 1").is_err());
    assert!(Tiling::parse_params("64 48 2 2 0").is_err());
}

#[test]
fn assembly_refuses_missing_malformed_and_wrong_size_tiles() {
    let tiling = Tiling::new(64, 48, 2, 2, 256).unwrap();
    let tile = ppm(32, 24, [10, 20, 30]);
    let with = |entries: &[(u64, Vec<u8>)]| tiling.assemble(entries);
    assert_eq!(
        with(&[(0, tile.clone()), (2, tile.clone())]),
        Err(AppError::MissingTiles { missing: vec![1, 3] })
    );
    assert_eq!(
        with(&[(0, tile.clone())]).unwrap_err().to_string(),
        "no tile for task indices 1, 2, 3"
    );
    assert_eq!(
        with(&[(0, tile.clone()), (1, ppm(24, 32, [0; 3])), (2, tile.clone()), (3, tile.clone())]),
        Err(AppError::WrongTileSize {
            index: 1,
            width: 24,
            height: 32,
            expected_width: 32,
            expected_height: 24
        })
    );
    let truncated = tile[..tile.len() - 1].to_vec();
    let error = with(&[(3, truncated)]).unwrap_err();
    assert!(
        matches!(&error, AppError::MalformedTile { index: 3, reason } if reason.contains("2303 bytes")),
        "{error}"
    );
    assert!(matches!(with(&[(2, b"PNG".to_vec())]), Err(AppError::MalformedTile { index: 2, .. })));
    assert_eq!(
        with(&[(0, tile.clone()), (0, tile.clone())]),
        Err(AppError::DuplicateTile { index: 0 })
    );
    assert_eq!(with(&[(4, tile.clone())]), Err(AppError::UnknownTile { index: 4, tasks: 4 }));
    // The same tiles, all present, make a picture of their colour.
    let all: Vec<(u64, Vec<u8>)> = (0..4).map(|index| (index, tile.clone())).collect();
    let (_, _, pixels) = decode_png(&with(&all).unwrap());
    assert!(pixels.chunks_exact(3).all(|pixel| pixel == [10, 20, 30]));
}
