//! How a Mandelbrot picture is cut into tasks, one tile each, and put back together.
//!
//! A deal of the Mandelbrot app ([`crate::MANDELBROT_WASM`]) carries its [`Tiling`] as params
//! (`WIDTH HEIGHT TILES_X TILES_Y MAX_ITER`) and has [`Tiling::tasks`] tasks. Task `i` renders
//! tile `(i % TILES_X, i / TILES_X)`, row-major, to [`TILE_FILE`]; [`Tiling::assemble`] places
//! the tiles into one PNG. The limits here are the app's own, so a tiling accepted here is one
//! the app accepts.

use std::io::Cursor;

use crate::AppError;

/// Largest picture side, pixels.
pub const SIDE_PX_MAX: u32 = 8192;
/// Most tiles in one picture, i.e. tasks in one bag.
pub const TILES_MAX: u32 = 16_384;
/// Most pixels in one tile, so one task stays well within the sandbox's memory and output limits.
pub const TILE_PX_MAX: u64 = 1 << 22;
/// Largest iteration count per pixel.
pub const MAX_ITER_MAX: u32 = 1 << 16;
/// The iteration count the app uses when `MAX_ITER` is not given.
pub const MAX_ITER_DEFAULT: u32 = 256;
/// The file each task writes in `/out`: its tile, as a binary PPM image.
pub const TILE_FILE: &str = "tile.ppm";
/// The environment variable that tells the app its task's 0-based index in the bag.
pub const TASK_INDEX_ENV: &str = "IEXEC_BOT_TASK_INDEX";

/// A picture and how it is cut into equal tiles. Build it with [`Tiling::new`] or
/// [`Tiling::parse_params`]; the methods check the fields again, so a hand-built value that
/// breaks the limits is refused rather than trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tiling {
    /// Picture width, pixels.
    pub width: u32,
    /// Picture height, pixels.
    pub height: u32,
    /// Tiles across.
    pub tiles_x: u32,
    /// Tiles down.
    pub tiles_y: u32,
    /// Iterations per pixel before a point counts as inside the set.
    pub max_iter: u32,
}

impl Tiling {
    /// A tiling of a `width` x `height` picture into `tiles_x` x `tiles_y` tiles.
    ///
    /// # Errors
    /// [`AppError::OutOfRange`] for a zero or too large value, [`AppError::TooManyTiles`],
    /// [`AppError::NotDivisible`] if a side does not split into equal tiles, and
    /// [`AppError::TileTooLarge`].
    pub fn new(
        width: u32,
        height: u32,
        tiles_x: u32,
        tiles_y: u32,
        max_iter: u32,
    ) -> Result<Self, AppError> {
        let tiling = Self { width, height, tiles_x, tiles_y, max_iter };
        tiling.validate()?;
        Ok(tiling)
    }

    fn validate(&self) -> Result<(), AppError> {
        for (name, value, max) in [
            ("WIDTH", self.width, SIDE_PX_MAX),
            ("HEIGHT", self.height, SIDE_PX_MAX),
            ("TILES_X", self.tiles_x, TILES_MAX),
            ("TILES_Y", self.tiles_y, TILES_MAX),
            ("MAX_ITER", self.max_iter, MAX_ITER_MAX),
        ] {
            if value == 0 || value > max {
                return Err(AppError::OutOfRange { name, value: value.into(), max: max.into() });
            }
        }
        if self.tasks() > u64::from(TILES_MAX) {
            return Err(AppError::TooManyTiles {
                tiles_x: self.tiles_x,
                tiles_y: self.tiles_y,
                max: TILES_MAX.into(),
            });
        }
        for (name, size, tiles_name, tiles) in [
            ("WIDTH", self.width, "TILES_X", self.tiles_x),
            ("HEIGHT", self.height, "TILES_Y", self.tiles_y),
        ] {
            if size % tiles != 0 {
                return Err(AppError::NotDivisible { name, size, tiles_name, tiles });
            }
        }
        let (tile_width, tile_height) = (self.width / self.tiles_x, self.height / self.tiles_y);
        if u64::from(tile_width) * u64::from(tile_height) > TILE_PX_MAX {
            return Err(AppError::TileTooLarge { tile_width, tile_height, max_px: TILE_PX_MAX });
        }
        Ok(())
    }

    /// The number of tasks (tiles) of the deal.
    pub fn tasks(&self) -> u64 {
        u64::from(self.tiles_x) * u64::from(self.tiles_y)
    }

    /// The width of one tile, pixels (0 if `tiles_x` is 0).
    pub fn tile_width(&self) -> u32 {
        self.width.checked_div(self.tiles_x).unwrap_or(0)
    }

    /// The height of one tile, pixels (0 if `tiles_y` is 0).
    pub fn tile_height(&self) -> u32 {
        self.height.checked_div(self.tiles_y).unwrap_or(0)
    }

    /// The deal's params: the app's arguments `WIDTH HEIGHT TILES_X TILES_Y MAX_ITER`, joined
    /// by spaces.
    pub fn params(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.width, self.height, self.tiles_x, self.tiles_y, self.max_iter
        )
    }

    /// Reads deal params `WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER]` (whitespace-separated, as
    /// the app reads its arguments; `MAX_ITER` defaults to [`MAX_ITER_DEFAULT`]).
    ///
    /// # Errors
    /// [`AppError::BadParams`] for a wrong count or a token that is not an integer, naming the
    /// argument; then the errors of [`Tiling::new`].
    pub fn parse_params(params: &str) -> Result<Self, AppError> {
        const NAMES: [&str; 5] = ["WIDTH", "HEIGHT", "TILES_X", "TILES_Y", "MAX_ITER"];
        let bad = |reason: String| AppError::BadParams { params: params.to_owned(), reason };
        let tokens: Vec<&str> = params.split_ascii_whitespace().collect();
        if !(4..=5).contains(&tokens.len()) {
            return Err(bad(format!("expected 4 or 5 arguments, got {}", tokens.len())));
        }
        let mut values = [0, 0, 0, 0, MAX_ITER_DEFAULT];
        for ((value, name), token) in values.iter_mut().zip(NAMES).zip(&tokens) {
            *value = token
                .parse()
                .map_err(|_| bad(format!("{name} must be a positive integer, got {token:?}")))?;
        }
        let [width, height, tiles_x, tiles_y, max_iter] = values;
        Self::new(width, height, tiles_x, tiles_y, max_iter)
    }

    /// Puts the tiles, given as (task index, [`TILE_FILE`] bytes), into one PNG image (8-bit
    /// RGB) of the whole picture. The order of `tiles` does not matter.
    ///
    /// # Errors
    /// The errors of [`Tiling::new`] if the fields break the limits;
    /// [`AppError::UnknownTile`], [`AppError::DuplicateTile`], [`AppError::MalformedTile`] or
    /// [`AppError::WrongTileSize`] naming the tile's index; [`AppError::MissingTiles`] naming
    /// every index without a tile; [`AppError::Encode`] if the encoder fails.
    pub fn assemble(&self, tiles: &[(u64, Vec<u8>)]) -> Result<Vec<u8>, AppError> {
        self.validate()?;
        let tasks = self.tasks();
        let (tile_width, tile_height) = (self.tile_width(), self.tile_height());
        let row_bytes = self.width as usize * 3;
        let tile_row_bytes = tile_width as usize * 3;
        let mut picture = vec![0_u8; row_bytes * self.height as usize];
        // At most TILES_MAX entries: validated above.
        let mut placed = vec![false; tasks as usize];
        for (index, bytes) in tiles {
            let index = *index;
            if index >= tasks {
                return Err(AppError::UnknownTile { index, tasks });
            }
            let slot = &mut placed[index as usize];
            if *slot {
                return Err(AppError::DuplicateTile { index });
            }
            *slot = true;
            let (width, height, pixels) =
                parse_ppm(bytes).map_err(|reason| AppError::MalformedTile { index, reason })?;
            if (width, height) != (tile_width, tile_height) {
                return Err(AppError::WrongTileSize {
                    index,
                    width,
                    height,
                    expected_width: tile_width,
                    expected_height: tile_height,
                });
            }
            // index < tasks, so both fit in u32.
            let x0 = (index % u64::from(self.tiles_x)) as usize * tile_width as usize;
            let y0 = (index / u64::from(self.tiles_x)) as usize * tile_height as usize;
            for (row, source) in pixels.chunks_exact(tile_row_bytes).enumerate() {
                let start = (y0 + row) * row_bytes + x0 * 3;
                picture[start..start + tile_row_bytes].copy_from_slice(source);
            }
        }
        let missing: Vec<u64> = (0..tasks).filter(|&index| !placed[index as usize]).collect();
        if !missing.is_empty() {
            return Err(AppError::MissingTiles { missing });
        }
        encode_png(self.width, self.height, &picture)
    }
}

fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, AppError> {
    let encode = |e: png::EncodingError| AppError::Encode(e.to_string());
    let mut out = Cursor::new(Vec::new());
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(rgb).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out.into_inner())
}

/// Reads a binary PPM (`P6`, maxval 255): its width, height and RGB bytes, nothing after them.
fn parse_ppm(bytes: &[u8]) -> Result<(u32, u32, &[u8]), String> {
    let mut header = Header { bytes, position: 0 };
    if !bytes.starts_with(b"P6") {
        return Err("it does not start with the binary PPM magic `P6`".into());
    }
    header.position = 2;
    let width = header.number("width")?;
    let height = header.number("height")?;
    let maxval = header.number("maxval")?;
    if maxval != 255 {
        return Err(format!("maxval is {maxval}, expected 255"));
    }
    // Exactly one whitespace byte separates the header from the pixels.
    match bytes.get(header.position) {
        Some(b) if b.is_ascii_whitespace() => {}
        _ => return Err("no whitespace after maxval".into()),
    }
    let pixels = &bytes[header.position + 1..];
    let expected = u64::from(width) * u64::from(height) * 3;
    if pixels.len() as u64 != expected {
        return Err(format!(
            "{} bytes of pixels for {width} x {height}, expected {expected}",
            pixels.len()
        ));
    }
    Ok((width, height, pixels))
}

/// A cursor over a PPM header.
struct Header<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Header<'_> {
    /// The next decimal field, after whitespace and `#` comments (at least one whitespace byte).
    fn number(&mut self, name: &str) -> Result<u32, String> {
        let start = self.position;
        loop {
            match self.bytes.get(self.position) {
                Some(b) if b.is_ascii_whitespace() => self.position += 1,
                Some(b'#') => {
                    while self.bytes.get(self.position).is_some_and(|&b| b != b'\n') {
                        self.position += 1;
                    }
                }
                _ => break,
            }
        }
        if self.position == start {
            return Err(format!("no whitespace before the {name}"));
        }
        let digits = self.position;
        while self.bytes.get(self.position).is_some_and(u8::is_ascii_digit) {
            self.position += 1;
        }
        std::str::from_utf8(&self.bytes[digits..self.position])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| format!("the {name} is not a number that fits in 32 bits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_new(args: [u32; 5], expected: Result<(), AppError>) {
        let [width, height, tiles_x, tiles_y, max_iter] = args;
        assert_eq!(Tiling::new(width, height, tiles_x, tiles_y, max_iter).map(|_| ()), expected);
    }

    #[test]
    fn tilings_are_checked_against_the_app_limits() {
        check_new([64, 48, 2, 2, 256], Ok(()));
        check_new([8192, 8192, 64, 64, 1 << 16], Ok(()));
        check_new(
            [0, 48, 1, 1, 256],
            Err(AppError::OutOfRange { name: "WIDTH", value: 0, max: 8192 }),
        );
        check_new(
            [64, 8193, 1, 1, 256],
            Err(AppError::OutOfRange { name: "HEIGHT", value: 8193, max: 8192 }),
        );
        check_new(
            [64, 48, 1, 1, 0],
            Err(AppError::OutOfRange { name: "MAX_ITER", value: 0, max: 65536 }),
        );
        check_new(
            [8192, 8192, 256, 128, 256],
            Err(AppError::TooManyTiles { tiles_x: 256, tiles_y: 128, max: 16_384 }),
        );
        check_new(
            [64, 48, 3, 1, 256],
            Err(AppError::NotDivisible {
                name: "WIDTH",
                size: 64,
                tiles_name: "TILES_X",
                tiles: 3,
            }),
        );
        check_new(
            [64, 48, 1, 5, 256],
            Err(AppError::NotDivisible {
                name: "HEIGHT",
                size: 48,
                tiles_name: "TILES_Y",
                tiles: 5,
            }),
        );
        check_new(
            [4096, 2048, 1, 1, 256],
            Err(AppError::TileTooLarge { tile_width: 4096, tile_height: 2048, max_px: 1 << 22 }),
        );
    }

    #[test]
    fn params_round_trip_and_default_max_iter() {
        let tiling = Tiling::new(640, 480, 4, 3, 500).unwrap();
        assert_eq!(tiling.params(), "640 480 4 3 500");
        assert_eq!(Tiling::parse_params(&tiling.params()), Ok(tiling));
        assert_eq!(Tiling::parse_params(" 64\t48 2 2 "), Tiling::new(64, 48, 2, 2, 256));
        assert_eq!(tiling.tasks(), 12);
        assert_eq!((tiling.tile_width(), tiling.tile_height()), (160, 160));
    }

    #[test]
    fn bad_params_name_the_argument() {
        let bad = |params: &str, reason: &str| {
            assert_eq!(
                Tiling::parse_params(params),
                Err(AppError::BadParams { params: params.into(), reason: reason.into() })
            );
        };
        bad("64 48 2", "expected 4 or 5 arguments, got 3");
        bad("64 48 2 2 256 7", "expected 4 or 5 arguments, got 6");
        bad("64 tall 2 2", "HEIGHT must be a positive integer, got \"tall\"");
        bad("64 48 2 -2", "TILES_Y must be a positive integer, got \"-2\"");
        assert_eq!(
            Tiling::parse_params("64 48 2 2 0"),
            Err(AppError::OutOfRange { name: "MAX_ITER", value: 0, max: 65536 })
        );
    }

    #[test]
    fn ppm_headers_are_read_strictly() {
        assert_eq!(parse_ppm(b"P6\n1 1\n255\nabc"), Ok((1, 1, &b"abc"[..])));
        assert_eq!(parse_ppm(b"P6 # made here\n2\t1 255 abcdef"), Ok((2, 1, &b"abcdef"[..])));
        assert!(parse_ppm(b"P3\n1 1\n255\nabc").unwrap_err().contains("P6"));
        assert!(parse_ppm(b"P6\n1 1\n65535\nabcabc").unwrap_err().contains("maxval is 65535"));
        assert!(parse_ppm(b"P6\n1 1\n255\nabcd").unwrap_err().contains("expected 3"));
        assert!(parse_ppm(b"P6\n1 1\n255").unwrap_err().contains("no whitespace after maxval"));
        assert!(parse_ppm(b"P61 1 255 abc").unwrap_err().contains("before the width"));
        assert!(parse_ppm(b"P6\n99999999999 1\n255\n").unwrap_err().contains("32 bits"));
    }

    #[test]
    fn hand_built_tilings_are_checked_before_use() {
        let tiling = Tiling { width: 64, height: 48, tiles_x: 0, tiles_y: 2, max_iter: 256 };
        assert_eq!(tiling.tile_width(), 0);
        assert_eq!(
            tiling.assemble(&[]),
            Err(AppError::OutOfRange { name: "TILES_X", value: 0, max: 16_384 })
        );
    }

    #[test]
    fn missing_indices_are_listed_up_to_twenty() {
        let error = AppError::MissingTiles { missing: (0..25).collect() };
        assert_eq!(
            error.to_string(),
            "no tile for task indices 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, \
             17, 18, 19 and 5 more"
        );
    }
}
