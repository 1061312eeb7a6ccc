//! Unicode normalisation of one text, with a map from the normalised bytes back
//! to the original ones.
//!
//! Two passes. The first walks the text once: ASCII runs are copied as they
//! are, invisible characters are dropped, tag characters are decoded to the
//! ASCII they smuggle, and everything else goes through NFKC one *cluster* at a
//! time (a character and the characters that may compose with it). The second
//! pass, which runs only if the first met a confusable letter, folds Cyrillic,
//! Greek and other look-alikes to Latin inside words that are Latin.
//!
//! The map is a list of [`Seg`]s: a stretch of output that is a byte-for-byte
//! copy of the original (an *identity* segment, however long), or the output of
//! one changed cluster (which maps, whole, to the cluster's original bytes).
//! Unchanged text costs one segment per stretch, so the map stays small; a text
//! that needs no change at all has no map ([`Mapping::Identity`]).

use std::iter;
use std::sync::OnceLock;

use unicode_normalization::char::{
    canonical_combining_class, decompose_compatible, is_combining_mark,
};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Texts longer than this are normalised without a map (their views map every
/// range to the whole text), so that map offsets fit in a `u32`, even after the
/// output has grown by [`MAX_GROWTH`].
const MAX_MAPPED_LEN: usize = (u32::MAX / 8) as usize;

/// NFKC may expand a character many times over (U+FDFA becomes 18 characters);
/// once the output is this many times the input (plus [`GROWTH_SLACK`]), further
/// clusters are copied unchanged rather than expanded, which bounds memory.
const MAX_GROWTH: usize = 4;

/// Bytes of growth allowed on top of [`MAX_GROWTH`], for short texts.
const GROWTH_SLACK: usize = 256;

/// A stretch of normalised output and the original bytes it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seg {
    /// Where it starts in the output.
    out: u32,
    /// Where its source starts in the original.
    orig: u32,
    /// The length of its source in the original (for an identity segment, also
    /// its length in the output).
    len: u32,
    /// Whether the output is a copy of the original bytes.
    identity: bool,
}

/// How a normalised text's bytes map to the original's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mapping {
    /// Byte `i` of the output is byte `i` of the original.
    Identity,
    /// Segments in output order; bytes the normalisation dropped are in no
    /// segment.
    Segments(Vec<Seg>),
    /// No map was kept (the text was too long); every range maps to the whole
    /// original.
    Untracked,
}

impl Mapping {
    /// The original byte range that output bytes `start..end` came from, given
    /// the output `text` and the original's length. `start..end` must be in
    /// bounds, `start <= end`, both on char boundaries of `text`.
    pub(super) fn original(
        &self,
        text: &str,
        orig_len: usize,
        start: usize,
        end: usize,
    ) -> (usize, usize) {
        let segs = match self {
            Mapping::Identity => return (start, end),
            Mapping::Untracked => return (0, orig_len),
            Mapping::Segments(segs) => segs,
        };
        let Some(last) = segs.last() else {
            // Everything was dropped: the whole original is the best answer.
            return (0, orig_len);
        };
        let a = if start >= text.len() {
            last.orig_end()
        } else {
            let seg = seg_at(segs, start);
            if seg.identity {
                seg.orig_usize() + (start - seg.out_usize())
            } else {
                seg.orig_usize()
            }
        };
        if end <= start {
            return (a, a);
        }
        let seg = seg_at(segs, end - 1);
        let b = if seg.identity {
            seg.orig_usize() + (end - seg.out_usize())
        } else {
            seg.orig_end()
        };
        (a, b.max(a))
    }
}

impl Seg {
    fn out_usize(&self) -> usize {
        self.out as usize
    }

    fn orig_usize(&self) -> usize {
        self.orig as usize
    }

    fn orig_end(&self) -> usize {
        self.orig as usize + self.len as usize
    }
}

/// The segment holding output byte `pos`. `segs` is not empty.
fn seg_at(segs: &[Seg], pos: usize) -> Seg {
    let i = segs
        .partition_point(|s| s.out_usize() <= pos)
        .saturating_sub(1);
    // INVARIANT: segments are sorted by `out` and the first starts at output 0,
    // so `i` is in bounds whenever `segs` is not empty.
    segs.get(i).copied().unwrap_or(Seg {
        out: 0,
        orig: 0,
        len: 0,
        identity: false,
    })
}

/// Normalises `text`, keeping a map to its bytes if `mapped` (and the text is
/// not too long for one).
pub(super) fn normalize(text: &str, mapped: bool) -> (String, Mapping) {
    if text.is_ascii() {
        // Fast path: ASCII is NFKC, holds no invisible or confusable character.
        return (text.to_owned(), Mapping::Identity);
    }
    let track = mapped && text.len() <= MAX_MAPPED_LEN;
    let mut b = Builder::new(text.len(), track);
    let confusables = first_pass(text, &mut b);
    let (out, segs, changed) = if confusables {
        let first = b.finish();
        fold_homoglyphs(first, track)
    } else {
        b.finish()
    };
    let mapping = if !track {
        if changed || !mapped {
            Mapping::Untracked
        } else {
            Mapping::Identity
        }
    } else if changed {
        Mapping::Segments(segs)
    } else {
        Mapping::Identity
    };
    (out, mapping)
}

/// Builds the output and its segments.
struct Builder {
    out: String,
    segs: Vec<Seg>,
    track: bool,
    /// Whether the output differs from the input anywhere.
    changed: bool,
    /// Output length past which clusters are no longer expanded.
    cap: usize,
}

impl Builder {
    fn new(len: usize, track: bool) -> Builder {
        Builder {
            out: String::with_capacity(len),
            segs: Vec::new(),
            track,
            changed: false,
            cap: len.saturating_mul(MAX_GROWTH).saturating_add(GROWTH_SLACK),
        }
    }

    /// Appends `s`, a copy of the original bytes at `orig`.
    fn identity(&mut self, orig: usize, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.track {
            let out = to_u32(self.out.len());
            let orig = to_u32(orig);
            match self.segs.last_mut() {
                Some(last)
                    if last.identity
                        && last.orig.wrapping_add(last.len) == orig
                        && last.out.wrapping_add(last.len) == out =>
                {
                    last.len = last.len.wrapping_add(to_u32(s.len()));
                }
                _ => self.segs.push(Seg {
                    out,
                    orig,
                    len: to_u32(s.len()),
                    identity: true,
                }),
            }
        }
        self.out.push_str(s);
    }

    /// Appends `s`, made from the `orig_len` original bytes at `orig`; an empty
    /// `s` records that they were dropped.
    fn mapped(&mut self, orig: usize, orig_len: usize, s: &str) {
        self.changed = true;
        if s.is_empty() {
            return;
        }
        if self.track {
            self.segs.push(Seg {
                out: to_u32(self.out.len()),
                orig: to_u32(orig),
                len: to_u32(orig_len),
                identity: false,
            });
        }
        self.out.push_str(s);
    }

    fn finish(self) -> (String, Vec<Seg>, bool) {
        (self.out, self.segs, self.changed)
    }
}

/// `x` as a `u32`.
fn to_u32(x: usize) -> u32 {
    // INVARIANT: only called while tracking, which `normalize` allows for texts
    // of at most `MAX_MAPPED_LEN` (a eighth of `u32::MAX`) bytes, whose output
    // is at most `MAX_GROWTH + 1` times longer plus `GROWTH_SLACK` (expansion
    // stops at the cap, later clusters are copied): all offsets fit.
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// The character starting at byte `i`, if `i` is a char boundary in bounds.
fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|s| s.chars().next())
}

/// The first pass: drops invisible characters, decodes tag characters, applies
/// NFKC cluster by cluster. Says whether the output holds a confusable letter.
///
/// Bytes that stay as they are (ASCII runs, characters NFKC keeps) are not
/// copied one by one: `copied` trails behind `i`, and the stretch between is
/// copied in one go when something changes, or at the end.
fn first_pass(text: &str, b: &mut Builder) -> bool {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut confusables = false;
    let mut kept = String::new();
    let mut nfkc = String::new();
    let mut copied = 0;
    // The character at `ahead.0` and its properties, when already decoded, so
    // that each character is decoded once.
    let mut ahead: Option<(usize, char, u8)> = None;
    let decode = |i: usize| char_at(text, i).map(|c| (i, c, props(c)));
    let mut i = 0;
    while i < n {
        if bytes.get(i).is_some_and(u8::is_ascii) {
            let end = next_non_ascii(bytes, i);
            if end == n {
                break;
            }
            // The last ASCII character of the run starts a cluster of its own
            // if what follows (past invisible characters) may compose with it
            // (`e` + U+0301).
            ahead = decode(end);
            let joins = match ahead {
                Some((_, _, p)) if p & JOINS != 0 => true,
                Some((_, _, p)) if p & INVISIBLE != 0 => {
                    decode(skip_invisible(text, end)).is_some_and(|(_, _, p)| p & JOINS != 0)
                }
                _ => false,
            };
            if joins {
                i = end - 1;
            } else {
                i = end;
                continue;
            }
        }
        let Some((_, c, p)) = ahead.filter(|a| a.0 == i).or_else(|| decode(i)) else {
            break;
        };
        let clen = c.len_utf8();
        if p & (INVISIBLE | SPECIAL) != 0 {
            b.identity(copied, text.get(copied..i).unwrap_or(""));
            match kind(c) {
                Kind::Invisible => b.mapped(i, clen, ""),
                Kind::Replace(r) => {
                    let mut buf = [0u8; 4];
                    b.mapped(i, clen, r.encode_utf8(&mut buf));
                }
                Kind::Other => b.identity(i, text.get(i..i + clen).unwrap_or("")),
            }
            i += clen;
            copied = i;
            continue;
        }
        // The cluster: `c`, then every character that may compose with it or
        // reorder around it, skipping invisible characters in between.
        let mut j = i + clen;
        let mut gap = false;
        while let Some((_, d, pd)) = decode(j) {
            if pd & JOINS != 0 {
                j += d.len_utf8();
                continue;
            }
            if pd & INVISIBLE != 0 {
                let k = skip_invisible(text, j);
                if let Some((_, e, _)) = decode(k).filter(|&(_, _, pe)| pe & JOINS != 0) {
                    gap = true;
                    j = k + e.len_utf8();
                    continue;
                }
            }
            ahead = Some((j, d, pd));
            break;
        }
        if j == i + clen && p & STABLE != 0 {
            confusables |= p & CONFUSABLE != 0;
            i = j;
            continue;
        }
        let orig = text.get(i..j).unwrap_or("");
        kept.clear();
        kept.extend(orig.chars().filter(|&d| props(d) & INVISIBLE == 0));
        nfkc.clear();
        nfkc.extend(kept.chars().nfkc());
        if b.out.len() + (i - copied) + nfkc.len() > b.cap {
            // Too much growth: keep the cluster as it is (minus the invisible
            // characters).
            nfkc.clear();
            nfkc.push_str(&kept);
        }
        confusables |= nfkc.chars().any(|d| props(d) & CONFUSABLE != 0);
        if !gap && nfkc == orig {
            i = j;
            continue;
        }
        b.identity(copied, text.get(copied..i).unwrap_or(""));
        b.mapped(i, j - i, &nfkc);
        i = j;
        copied = j;
    }
    b.identity(copied, text.get(copied..).unwrap_or(""));
    confusables
}

/// The first non-ASCII byte at or after `from` (or the length): 32 bytes at a
/// time through long ASCII runs.
fn next_non_ascii(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or(&[]);
    let mut k = 0;
    for chunk in rest.chunks_exact(32) {
        if !chunk.is_ascii() {
            break;
        }
        k += 32;
    }
    rest.get(k..)
        .and_then(|tail| tail.iter().position(|x| !x.is_ascii()))
        .map_or(bytes.len().max(from), |p| from + k + p)
}

/// The first byte at or after `i` that does not start an invisible character.
fn skip_invisible(text: &str, mut i: usize) -> usize {
    while let Some(d) = char_at(text, i)
        && props(d) & INVISIBLE != 0
    {
        i += d.len_utf8();
    }
    i
}

/// Character properties, as bits of a `u8`: may compose with the character
/// before it (see [`joins_previous`]).
const JOINS: u8 = 1;
/// NFKC leaves it as it is (NFKC_Quick_Check = Yes).
const STABLE: u8 = 1 << 1;
/// Dropped (see [`is_invisible`]).
const INVISIBLE: u8 = 1 << 2;
/// Replaced by another character (see [`kind`]).
const SPECIAL: u8 = 1 << 3;
/// Has an entry in [`confusable`].
const CONFUSABLE: u8 = 1 << 4;
/// Part of a word (see [`is_word_char`]).
const WORD: u8 = 1 << 5;
/// A Latin letter, ASCII or not.
const LATIN: u8 = 1 << 6;
/// A letter.
const ALPHA: u8 = 1 << 7;

/// The properties of the characters of the Basic Multilingual Plane, in pages
/// of 256 computed on first use and then looked up: the Unicode tables behind
/// them are searched, which costs more than the rest of the first pass. A
/// text touches few pages (ASCII, Latin-1, Cyrillic, punctuation), so the first
/// call costs microseconds, not the milliseconds of the whole plane.
static PAGES: [OnceLock<[u8; 256]>; 256] = [const { OnceLock::new() }; 256];

/// The properties of `c`.
#[inline]
fn props(c: char) -> u8 {
    let u = c as usize;
    if let Some(&p) = ASCII_PROPS.get(u) {
        return p;
    }
    match PAGES.get(u >> 8) {
        Some(page) => {
            let page = page.get_or_init(|| {
                let mut p = [0u8; 256];
                for (k, slot) in p.iter_mut().enumerate() {
                    *slot = char::from_u32(((u >> 8) << 8 | k) as u32).map_or(0, compute_props);
                }
                p
            });
            page.get(u & 0xff).copied().unwrap_or(0)
        }
        None => compute_props(c),
    }
}

/// The properties of the ASCII characters, without a page to look up.
static ASCII_PROPS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() {
            t[i] |= WORD;
        }
        if b.is_ascii_alphabetic() {
            t[i] |= LATIN | ALPHA;
        }
        t[i] |= STABLE;
        i += 1;
    }
    t
};

/// The properties of `c`, from the Unicode tables.
fn compute_props(c: char) -> u8 {
    match kind(c) {
        Kind::Invisible => return INVISIBLE,
        Kind::Replace(_) => return SPECIAL,
        Kind::Other => {}
    }
    let mut p = 0;
    if c.is_ascii() || is_nfkc_quick(iter::once(c)) == IsNormalized::Yes {
        p |= STABLE;
    }
    if joins_previous(c) {
        p |= JOINS;
    }
    if confusable(c).is_some() {
        p |= CONFUSABLE;
    }
    if is_word_char(c) {
        p |= WORD;
    }
    if c.is_ascii_alphabetic() || is_latin_letter(c) {
        p |= LATIN;
    }
    if c.is_alphabetic() {
        p |= ALPHA;
    }
    p
}

/// What the first pass does with a character, before NFKC.
enum Kind {
    /// Dropped.
    Invisible,
    /// Replaced by this character (tag characters by the ASCII they encode,
    /// line separators by a newline).
    Replace(char),
    /// Normalised with NFKC.
    Other,
}

/// What the first pass does with `c`.
fn kind(c: char) -> Kind {
    match c {
        '\u{0}'..='\u{7f}' => Kind::Other,
        // Tag characters: U+E0020..U+E007E carry ASCII 0x20..0x7E invisibly
        // ("ASCII smuggling"); decode them.
        '\u{E0020}'..='\u{E007E}' => {
            char::from_u32(c as u32 - 0xE0000).map_or(Kind::Invisible, Kind::Replace)
        }
        '\u{0085}' | '\u{2028}' | '\u{2029}' => Kind::Replace('\n'),
        // The Braille blank renders as a space and is used as one.
        '\u{2800}' => Kind::Replace(' '),
        c if is_invisible(c) => Kind::Invisible,
        _ => Kind::Other,
    }
}

/// Whether `c` renders as nothing (zero-width characters, bidi controls,
/// variation selectors, fillers, other tag characters): the
/// Default_Ignorable_Code_Point set and the invisible format characters (Cf).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E001F}'
            | '\u{E007F}'..='\u{E0FFF}'
    )
}

/// Whether `c` may compose with, or reorder around, the character before it,
/// so that NFKC must see the two together.
fn joins_previous(c: char) -> bool {
    if c.is_ascii() || !matches!(kind(c), Kind::Other) {
        return false;
    }
    if canonical_combining_class(c) != 0 {
        return true;
    }
    match is_nfkc_quick(iter::once(c)) {
        IsNormalized::Yes => false,
        IsNormalized::Maybe => true,
        // A character NFKC replaces joins only if its replacement starts
        // with a combining character (U+0F73 becomes U+0F71 U+0F72).
        IsNormalized::No => {
            let mut first = None;
            decompose_compatible(c, |d| {
                if first.is_none() {
                    first = Some(d);
                }
            });
            first.is_some_and(|d| canonical_combining_class(d) != 0)
        }
    }
}

/// The second pass: folds look-alike letters to Latin inside words that are
/// Latin. Returns the new output, its segments composed with `first`'s, and
/// whether anything changed at all.
///
/// Why not UTS #39 `skeleton` (in `unicode-security`): it maps whole strings
/// to a prototype that also rewrites ASCII (`rn` → `m`, `l` → `I`, `0` → `O`),
/// decomposes (NFD) and drops marks, which would damage ordinary text and
/// break the byte map. Folding a short table of letters only, and only in
/// words that are written in Latin, leaves Russian and Greek text as it is:
/// an attack spells an English word with a few foreign letters, a Russian word
/// has many letters that look like nothing Latin.
fn fold_homoglyphs(first: (String, Vec<Seg>, bool), track: bool) -> (String, Vec<Seg>, bool) {
    let (text, segs, changed) = first;
    let folds = words_to_fold(&text);
    if folds.is_empty() {
        return (text, segs, changed);
    }
    let mut b = Builder::new(text.len(), track);
    b.changed = changed;
    let mut cursor = FoldCursor {
        folds: &folds,
        next: 0,
    };
    if !track {
        let mut last = 0;
        for &(s, e) in &folds {
            b.out.push_str(text.get(last..s).unwrap_or(""));
            for c in text.get(s..e).unwrap_or("").chars() {
                b.out.push(confusable(c).unwrap_or(c));
            }
            last = e;
        }
        b.out.push_str(text.get(last..).unwrap_or(""));
        b.changed = true;
        return b.finish();
    }
    let mut folded = String::new();
    for (n, seg) in segs.iter().enumerate() {
        let a = seg.out_usize();
        let z = segs.get(n + 1).map_or(text.len(), Seg::out_usize);
        let piece = text.get(a..z).unwrap_or("");
        if !cursor.overlaps(a, z) {
            if seg.identity {
                b.identity(seg.orig_usize(), piece);
            } else {
                b.mapped(seg.orig_usize(), seg.len as usize, piece);
            }
            continue;
        }
        if !seg.identity {
            folded.clear();
            for (k, c) in piece.char_indices() {
                folded.push(fold_at(&mut cursor, a + k, c));
            }
            b.mapped(seg.orig_usize(), seg.len as usize, &folded);
            continue;
        }
        // An identity segment with folded letters in it: split it.
        let mut copied = 0;
        for (k, c) in piece.char_indices() {
            let f = fold_at(&mut cursor, a + k, c);
            if f != c {
                b.identity(
                    seg.orig_usize() + copied,
                    piece.get(copied..k).unwrap_or(""),
                );
                let mut buf = [0u8; 4];
                b.mapped(seg.orig_usize() + k, c.len_utf8(), f.encode_utf8(&mut buf));
                copied = k + c.len_utf8();
            }
        }
        b.identity(seg.orig_usize() + copied, piece.get(copied..).unwrap_or(""));
    }
    b.finish()
}

/// Walks sorted, disjoint fold ranges along increasing output positions.
struct FoldCursor<'a> {
    folds: &'a [(usize, usize)],
    next: usize,
}

impl FoldCursor<'_> {
    /// Whether a fold range overlaps `a..z` (positions only increase).
    fn overlaps(&mut self, a: usize, z: usize) -> bool {
        while self.folds.get(self.next).is_some_and(|&(_, e)| e <= a) {
            self.next += 1;
        }
        self.folds.get(self.next).is_some_and(|&(s, _)| s < z)
    }

    /// Whether position `pos` is in a fold range (positions only increase).
    fn contains(&mut self, pos: usize) -> bool {
        while self.folds.get(self.next).is_some_and(|&(_, e)| e <= pos) {
            self.next += 1;
        }
        self.folds.get(self.next).is_some_and(|&(s, _)| s <= pos)
    }
}

/// `c` at output position `pos`, folded if it is in a fold range.
fn fold_at(cursor: &mut FoldCursor<'_>, pos: usize, c: char) -> char {
    if !c.is_ascii() && cursor.contains(pos) {
        confusable(c).unwrap_or(c)
    } else {
        c
    }
}

/// The byte ranges of the words of `text` whose look-alike letters are folded.
///
/// A word is folded if it mixes Latin letters with look-alikes and has at
/// least as many Latin letters as letters of other scripts (`іgnоrе`, not
/// `привeт`). A word made of look-alikes only (`ѕау`, `а`, but also Russian
/// `Совет`) is folded only if the nearest words before and after it that have
/// letters of their own are Latin (or there is none before it, or none after
/// it and the one before is Latin): Russian `а` between Russian words stays,
/// and so does `Совет` after a German sentence.
fn words_to_fold(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut folds = Vec::new();
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut prev_latin: Option<bool> = None;
    // The properties and length of the character at `i`.
    let at = |i: usize| match bytes.get(i) {
        Some(&b) if b.is_ascii() => (props(char::from(b)), 1),
        _ => char_at(text, i).map_or((0, 1), |c| (props(c), c.len_utf8())),
    };
    let mut i = 0;
    while i < n {
        let (p, len) = at(i);
        if p & WORD == 0 {
            i += len;
            continue;
        }
        let start = i;
        let (mut latin, mut conf, mut other) = (0usize, 0usize, 0usize);
        let mut p = p;
        let mut len = len;
        while p & WORD != 0 {
            if p & CONFUSABLE != 0 {
                conf += 1;
            } else if p & LATIN != 0 {
                latin += 1;
            } else if p & ALPHA != 0 {
                other += 1;
            }
            i += len;
            if i >= n {
                break;
            }
            (p, len) = at(i);
        }
        let end = i;
        if latin == 0 && other == 0 {
            if conf > 0 {
                pending.push((start, end));
            }
            continue;
        }
        let is_latin = latin >= other;
        // Look-alike words between Latin words (or at the start of the text,
        // before one) are folded; at a border between Latin and Cyrillic text
        // they are not (`… wachsen. Совет директоров`).
        if is_latin && prev_latin != Some(false) {
            folds.append(&mut pending);
        } else {
            pending.clear();
        }
        if is_latin && conf > 0 {
            folds.push((start, end));
        }
        prev_latin = Some(is_latin);
    }
    if prev_latin == Some(true) {
        folds.append(&mut pending);
    }
    folds
}

/// Whether `c` belongs to a word.
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        c.is_alphanumeric() || is_combining_mark(c)
    }
}

/// Whether `c` is a non-ASCII letter of the Latin script (`é`, `ß`, `ł`).
fn is_latin_letter(c: char) -> bool {
    matches!(
        c,
        '\u{00C0}'..='\u{00D6}'
            | '\u{00D8}'..='\u{00F6}'
            | '\u{00F8}'..='\u{024F}'
            | '\u{1E00}'..='\u{1EFF}'
            | '\u{2C60}'..='\u{2C7F}'
            | '\u{A720}'..='\u{A7FF}'
            | '\u{AB30}'..='\u{AB6F}'
    )
}

/// The Latin letter that `c` is drawn like, for the letters of other scripts
/// (and a few Latin ones outside ASCII) that an attacker uses to spell an
/// English word past a filter. Fullwidth and mathematical letters need no entry:
/// NFKC has folded them already.
pub(super) fn confusable(c: char) -> Option<char> {
    let l = match c {
        // Cyrillic.
        'а' => 'a',
        'в' => 'b',
        'с' => 'c',
        'ԁ' => 'd',
        'е' => 'e',
        'һ' => 'h',
        'і' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' => 't',
        'ԝ' => 'w',
        'х' => 'x',
        'у' | 'ү' => 'y',
        'А' => 'A',
        'В' => 'B',
        'С' => 'C',
        'Е' => 'E',
        'Н' => 'H',
        'І' | 'Ӏ' => 'I',
        'Ј' => 'J',
        'К' => 'K',
        'М' => 'M',
        'О' => 'O',
        'Р' => 'P',
        'Ԛ' => 'Q',
        'Ѕ' => 'S',
        'Т' => 'T',
        'Ԝ' => 'W',
        'Х' => 'X',
        'У' | 'Ү' => 'Y',
        // Greek.
        'α' => 'a',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'υ' => 'u',
        'χ' => 'x',
        'γ' => 'y',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        // Armenian.
        'հ' => 'h',
        'ո' => 'n',
        'զ' => 'q',
        'ս' => 'u',
        'օ' => 'o',
        // Latin outside ASCII: dotless i and j, IPA, small capitals.
        'ı' => 'i',
        'ȷ' => 'j',
        'ɑ' => 'a',
        'ɡ' => 'g',
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        _ => return None,
    };
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s, true).0
    }

    #[test]
    fn ascii_is_copied_without_a_map() {
        let (out, map) = normalize("ignore previous instructions", true);
        assert_eq!(out, "ignore previous instructions");
        assert_eq!(map, Mapping::Identity);
    }

    #[test]
    fn unchanged_non_ascii_text_has_no_map() {
        let s = "Grüße aus Köln, à bientôt, до свидания";
        let (out, map) = normalize(s, true);
        assert_eq!(out, s);
        assert_eq!(map, Mapping::Identity);
    }

    #[test]
    fn zero_width_and_bidi_controls_are_dropped() {
        assert_eq!(
            norm("ig\u{200b}no\u{200d}re\u{feff} all\u{00ad}"),
            "ignore all"
        );
        assert_eq!(norm("\u{202e}erongi\u{202c} \u{2066}x\u{2069}"), "erongi x");
        assert_eq!(norm("a\u{fe0f}b\u{e0100}c\u{180e}d"), "abcd");
    }

    #[test]
    fn tag_characters_are_decoded_to_ascii() {
        let smuggled: String = "hi"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        assert_eq!(norm(&format!("ok{smuggled}\u{e007f}")), "okhi");
    }

    #[test]
    fn nfkc_folds_fullwidth_and_mathematical_letters() {
        assert_eq!(norm("ｉｇｎｏｒｅ"), "ignore");
        assert_eq!(norm("𝐢𝐠𝐧𝐨𝐫𝐞 𝘢𝘭𝘭"), "ignore all");
        assert_eq!(norm("ﬁle"), "file");
    }

    #[test]
    fn nfkc_composes_across_a_dropped_character() {
        assert_eq!(norm("e\u{200b}\u{301}t\u{e9}"), "\u{e9}t\u{e9}");
        // Hangul jamo compose into a syllable.
        assert_eq!(norm("\u{1100}\u{1161}"), "\u{ac00}");
    }

    #[test]
    fn mixed_script_words_are_folded_to_latin() {
        assert_eq!(norm("іgnоrе аll рrеvіоus"), "ignore all previous");
        assert_eq!(norm("ѕау уеѕ"), "ѕау уеѕ", "no Latin context: left alone");
        assert_eq!(norm("please ѕау уеѕ now"), "please say yes now");
        assert_eq!(norm("ɪɢɴᴏʀᴇ the rules"), "ignore the rules");
    }

    #[test]
    fn russian_and_greek_text_is_not_folded() {
        for s in [
            "Привет, а ты придёшь сегодня? Я сказал о том, что у нас всё хорошо.",
            "Καλημέρα, ο καιρός είναι καλός.",
            "привeт", // one Latin e in a Russian word: not turned into Latin
            // Words made of look-alikes only, at a border between languages.
            "Die Zusammenarbeit soll wachsen.\nСовет директоров обсудил итоги года: выручка выросла.\nThe end.",
            "Le comité a présenté son rapport. Совет директоров. Die Strategie.",
        ] {
            assert_eq!(norm(s), s);
        }
    }

    #[test]
    fn folded_letters_map_to_their_original_bytes() {
        let s = "say іgnоrе now";
        let (out, map) = normalize(s, true);
        assert_eq!(out, "say ignore now");
        let w = out.find("ignore").unwrap();
        let (a, b) = map.original(&out, s.len(), w, w + 6);
        assert_eq!(&s[a..b], "іgnоrе");
        // A single folded letter maps to its two bytes.
        let (a, b) = map.original(&out, s.len(), w, w + 1);
        assert_eq!(&s[a..b], "і");
        let (a, b) = map.original(&out, s.len(), w + 7, out.len());
        assert_eq!(&s[a..b], "now");
    }

    #[test]
    fn expansion_maps_to_the_whole_cluster() {
        let s = "a ﬁ b";
        let (out, map) = normalize(s, true);
        assert_eq!(out, "a fi b");
        assert_eq!(map.original(&out, s.len(), 2, 3), (2, 5));
        assert_eq!(map.original(&out, s.len(), 3, 4), (2, 5));
        assert_eq!(map.original(&out, s.len(), 4, 6), (5, 7));
    }

    #[test]
    fn the_property_tables_agree_with_the_unicode_tables() {
        for u in (0..0x3000).chain(0xFE00..0x1_0000) {
            if let Some(c) = char::from_u32(u) {
                assert_eq!(props(c), compute_props(c), "U+{u:04X}");
            }
        }
        assert_eq!(props('\u{E0041}'), SPECIAL);
        assert_eq!(props('\u{E0100}'), INVISIBLE);
        assert_ne!(
            props('\u{1D422}') & STABLE,
            STABLE,
            "mathematical i is not NFKC-stable"
        );
    }

    #[test]
    fn growth_is_bounded() {
        let s = "\u{fdfa}".repeat(1000);
        let (out, _) = normalize(&s, true);
        assert!(out.len() > s.len() * MAX_GROWTH);
        assert!(out.len() <= s.len() * (MAX_GROWTH + 1) + GROWTH_SLACK);
    }
}
