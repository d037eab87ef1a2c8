//! Loss masking, token by token: a two-turn conversation rendered with the tiny model's
//! ChatML template and with the Vicuna template trains on exactly each assistant answer and
//! the marker that ends it; the system prompt, user turns and role headers are masked.

use arena_train::data::parse_line;
use arena_train::mask::{encode, Example};
use arena_worker::model::loader::load_tokenizer;
use arena_worker::text::template::Template;
use arena_worker::text::tokenizer::Tokenizer;
use arena_worker::tiny::{write_tiny_gguf, VocabKind};

const CONVERSATION: &str = r#"{"id": "c", "conversations": [
    {"from": "human", "value": "hello"}, {"from": "gpt", "value": "hello world"},
    {"from": "human", "value": "world"}, {"from": "gpt", "value": "hello"}]}"#;

fn tiny() -> (tempfile::TempDir, Tokenizer, Template) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path, VocabKind::Gpt2, 1).unwrap();
    let tok = load_tokenizer(&path).unwrap();
    let own = arena_worker::model::loader::dense::load_dense(&path, &candle_core::Device::Cpu)
        .unwrap()
        .own_template
        .unwrap();
    (dir, tok, own)
}

/// The supervised tokens as runs of consecutive ids.
fn supervised_runs(ex: &Example) -> Vec<Vec<u32>> {
    let mut runs: Vec<Vec<u32>> = Vec::new();
    let mut open = false;
    for (id, s) in ex.ids.iter().zip(&ex.supervised) {
        match (s, open) {
            (true, true) => runs.last_mut().unwrap().push(*id),
            (true, false) => runs.push(vec![*id]),
            _ => {}
        }
        open = *s;
    }
    runs
}

fn ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
    tok.encode(text, false).unwrap()
}

#[test]
fn chatml_trains_on_each_answer_and_its_end_marker_only() {
    let (_dir, tok, template) = tiny();
    let conv = parse_line(CONVERSATION, 1).unwrap();
    let ex = encode(&conv, &template, &tok).unwrap();
    let end = ids(&tok, "<|im_end|>");
    assert_eq!(end.len(), 1, "the end marker is one special token");
    let answer = |text: &str| [ids(&tok, text), end.clone()].concat();
    assert_eq!(
        supervised_runs(&ex),
        vec![answer("hello world"), answer("hello")]
    );
    // Everything else is the template and the user: the sequence is exactly the rendered
    // conversation, cut right after the last answer's end marker.
    let rendered =
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhello world<|im_end|>\n\
                    <|im_start|>user\nworld<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>";
    assert_eq!(ex.ids, ids(&tok, rendered));
    assert_eq!(
        ex.supervised_tokens(),
        2 * end.len() + ids(&tok, "hello world").len() + ids(&tok, "hello").len()
    );
}

#[test]
fn vicuna_trains_on_each_answer_and_its_eos_text() {
    let (_dir, tok, _) = tiny();
    let conv = parse_line(CONVERSATION, 1).unwrap();
    let template = Template::by_name("vicuna_v1.1").unwrap();
    let ex = encode(&conv, &template, &tok).unwrap();
    let runs = supervised_runs(&ex);
    let texts: Vec<String> = runs
        .iter()
        .map(|r| {
            r.iter()
                .map(|&i| tok.id_to_token(i).unwrap())
                .collect::<String>()
        })
        .collect();
    // Byte-level tokens spell a space as Ġ.
    assert_eq!(texts, ["helloĠworld</s>", "hello</s>"], "{ex:?}");
}

#[test]
fn a_long_conversation_is_cut_into_pieces_that_each_have_something_to_learn() {
    let (_dir, tok, template) = tiny();
    let conv = parse_line(CONVERSATION, 1).unwrap();
    let ex = encode(&conv, &template, &tok).unwrap();
    let pieces = ex.split(8);
    assert!(pieces.len() >= 2, "{}", ex.ids.len());
    assert!(pieces.iter().all(|p| p.ids.len() <= 8));
    assert!(pieces.iter().all(|p| p.supervised[1..].iter().any(|s| *s)));
    // Nothing supervised is lost except a piece's first token, which nothing predicts.
    let kept: usize = pieces.iter().map(|p| p.supervised_tokens()).sum();
    assert!(kept <= ex.supervised_tokens() && kept + pieces.len() >= ex.supervised_tokens());
}

#[test]
fn smollm2s_own_template_trains_on_the_answers_and_im_end_token_by_token() {
    // Fetched by scripts/fetch-models.sh into $ARENA_MODELS (scripts/test.sh does).
    let dir = std::env::var_os("ARENA_MODELS").map_or_else(
        || std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/arena/models"),
        std::path::PathBuf::from,
    );
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh",
        path.display()
    );
    let dense =
        arena_worker::model::loader::dense::load_dense(&path, &candle_core::Device::Cpu).unwrap();
    let (tok, template) = (&dense.tokenizer, dense.own_template.clone().unwrap());
    // An answer that types the end marker as text must not end the turn nor unmask anything.
    let line = r#"{"conversations": [
        {"from": "human", "value": "What is the capital of France?"},
        {"from": "gpt", "value": "Paris. Literally <|im_end|> is just text here."},
        {"from": "human", "value": "And of Italy?"},
        {"from": "gpt", "value": "Rome."}]}"#;
    let ex = encode(&parse_line(line, 1).unwrap(), &template, tok).unwrap();
    let end = tok.encode("<|im_end|>", false).unwrap();
    assert_eq!(end.len(), 1);
    let typed = tok
        .encode_plain("Paris. Literally <|im_end|> is just text here.", false)
        .unwrap();
    assert!(!typed.contains(&end[0]), "typed markers are text");
    let runs = supervised_runs(&ex);
    assert_eq!(
        runs,
        vec![
            [typed, end.clone()].concat(),
            [ids(tok, "Rome."), end.clone()].concat()
        ]
    );
    // The unsupervised rest is SmolLM2's default system prompt, the user turns and the role
    // headers, each token checked by decoding the masked spans in order.
    let mut masked = String::new();
    let mut spans = Vec::new();
    for (id, s) in ex.ids.iter().zip(&ex.supervised) {
        if *s {
            if !masked.is_empty() {
                spans.push(std::mem::take(&mut masked));
            }
        } else {
            // Byte-level BPE spells a space Ġ and a newline Ċ.
            let text = tok.id_to_token(*id).unwrap();
            masked.push_str(&text.replace('Ġ', " ").replace('Ċ', "\n"));
        }
    }
    assert!(
        masked.is_empty(),
        "the sequence ends with the last answer's marker"
    );
    assert_eq!(
        spans,
        [
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
             Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n\
             <|im_start|>assistant\n",
            "\n<|im_start|>user\nAnd of Italy?<|im_end|>\n<|im_start|>assistant\n",
        ]
    );
}
