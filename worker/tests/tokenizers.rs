//! Tokenizers built from GGUF metadata and Hugging Face files, and streaming decode.

use arena_worker::model::loader;
use arena_worker::text::tokenizer::{StreamDecoder, Tokenizer};
use arena_worker::tiny::{self, VocabKind};

fn gguf_tokenizer(kind: VocabKind) -> Tokenizer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gguf");
    tiny::write_tiny_gguf(&path, kind, 1).unwrap();
    loader::load_tokenizer(&path).unwrap()
}

fn id(tok: &Tokenizer, piece: &str) -> u32 {
    (0..tok.vocab_size() as u32)
        .find(|&i| tok.id_to_token(i).as_deref() == Some(piece))
        .unwrap_or_else(|| panic!("no token {piece}"))
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut d = StreamDecoder::default();
    let mut out: Vec<String> = ids
        .iter()
        .filter_map(|&i| d.push(tok, i).unwrap())
        .collect();
    let rest = d.flush(tok).unwrap();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[test]
fn byte_level_bpe_merges_and_recognises_special_tokens() {
    let tok = gguf_tokenizer(VocabKind::Gpt2);
    let ids = tok.encode("hello world", false).unwrap();
    assert_eq!(ids, vec![id(&tok, "hello"), id(&tok, "Ġworld")]);
    let ids = tok
        .encode("<|im_start|>user\nhello<|im_end|>", false)
        .unwrap();
    assert_eq!(ids.first(), Some(&id(&tok, "<|im_start|>")));
    assert_eq!(ids.last(), Some(&id(&tok, "<|im_end|>")));
    assert_eq!(
        tok.decode(&tok.encode("hello world, ünïcödé 日本", false).unwrap())
            .unwrap(),
        "hello world, ünïcödé 日本"
    );
    // add_bos_token is false in the metadata, as in SmolLM2.
    assert_eq!(
        tok.encode("hello", true).unwrap(),
        tok.encode("hello", false).unwrap()
    );
    assert_eq!(tok.eos_ids(), &[id(&tok, "<|im_end|>")]);
}

#[test]
fn digits_are_split_one_by_one_for_the_smollm_pre_tokenizer() {
    let tok = gguf_tokenizer(VocabKind::Gpt2);
    let ids = tok.encode("2024", false).unwrap();
    assert_eq!(ids.len(), 4);
}

#[test]
fn sentencepiece_vocab_merges_by_score_with_byte_fallback() {
    let tok = gguf_tokenizer(VocabKind::Spm);
    let ids = tok.encode("hello world", false).unwrap();
    assert_eq!(ids, vec![id(&tok, "▁hello"), id(&tok, "▁world")]);
    assert_eq!(tok.decode(&ids).unwrap(), "hello world");
    let ids = tok.encode("é", false).unwrap();
    assert_eq!(
        ids,
        vec![id(&tok, "▁"), id(&tok, "<0xC3>"), id(&tok, "<0xA9>")]
    );
    assert_eq!(tok.decode(&ids).unwrap(), "é");
    // LLaMA-style vocabularies start prompts with BOS.
    assert_eq!(tok.encode("hello", true).unwrap()[0], 1);
    assert_eq!(tok.bos_id(), Some(1));
}

#[test]
fn streaming_multibyte_characters_split_across_tokens_is_valid_utf8() {
    let text = "日本語 😀 👨‍👩‍👧‍👦 café";
    for kind in [VocabKind::Gpt2, VocabKind::Spm] {
        let tok = gguf_tokenizer(kind);
        let ids = tok.encode(text, false).unwrap();
        assert!(
            ids.len() > text.chars().count(),
            "{kind:?}: bytes should be separate tokens"
        );
        let deltas = stream(&tok, &ids);
        for d in &deltas {
            assert!(
                !d.contains('\u{FFFD}'),
                "{kind:?}: replacement char in {d:?}"
            );
        }
        assert_eq!(deltas.concat(), text, "{kind:?}");
    }
}

#[test]
fn streaming_keeps_sentencepiece_spaces() {
    let tok = gguf_tokenizer(VocabKind::Spm);
    let ids = tok.encode("hello world hello", false).unwrap();
    assert_eq!(stream(&tok, &ids).concat(), "hello world hello");
}

#[test]
fn an_unfinished_character_is_flushed_at_the_end() {
    let tok = gguf_tokenizer(VocabKind::Gpt2);
    let ids = tok.encode("a😀", false).unwrap();
    // Cut inside the emoji's four bytes: nothing is lost, the tail becomes U+FFFD.
    let deltas = stream(&tok, &ids[..3]);
    assert_eq!(deltas.concat(), "a\u{FFFD}");
}

#[test]
fn hugging_face_tokenizer_json_matches_the_gguf_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    tiny::write_tiny_hf(dir.path(), candle_core::DType::F32, 1).unwrap();
    let hf = loader::load_tokenizer(dir.path()).unwrap();
    let gguf = gguf_tokenizer(VocabKind::Gpt2);
    for text in [
        "hello world",
        "<|im_start|>user\nhi<|im_end|>",
        "naïve 日本",
    ] {
        let expect = gguf.encode(text, false).unwrap();
        // The tiny smollm-style GGUF splits digits; these texts have none, so both agree.
        assert_eq!(hf.encode(text, false).unwrap(), expect, "{text}");
    }
    assert_eq!(hf.eos_ids(), gguf.eos_ids());
}
