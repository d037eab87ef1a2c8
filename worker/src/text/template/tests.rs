use super::*;

fn convo() -> Vec<Message> {
    vec![
        Message::new(Role::User, "Hello!"),
        Message::new(Role::Assistant, "Hi!"),
        Message::new(Role::User, "How are you?"),
    ]
}

fn render(name: &str, msgs: &[Message], system: Option<&str>) -> String {
    Template::by_name(name)
        .unwrap()
        .render(msgs, system)
        .unwrap()
        .text
}

#[test]
fn vicuna_is_byte_exact() {
    assert_eq!(
        render("vicuna_v1.1", &convo(), None),
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: Hello! ASSISTANT: Hi!</s>USER: How are you? ASSISTANT:"
    );
}

#[test]
fn alpaca_is_byte_exact() {
    assert_eq!(
        render("alpaca", &convo()[..1], None),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHello!\n\n### Response:\n"
    );
}

#[test]
fn llama2_is_byte_exact_with_and_without_system() {
    assert_eq!(
        render("llama-2", &convo(), None),
        "[INST] Hello! [/INST] Hi! </s><s>[INST] How are you? [/INST]"
    );
    assert_eq!(
        render("llama-2", &convo(), Some("Be brief.")),
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello! [/INST] Hi! </s><s>[INST] How are you? [/INST]"
    );
}

#[test]
fn zero_shot_is_byte_exact() {
    assert_eq!(
        render("zero_shot", &convo(), None),
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.\n### Human: Hello!\n### Assistant: Hi!\n### Human: How are you?\n### Assistant:"
    );
    assert_eq!(
        Template::by_name("zero_shot").unwrap().stop_strings(),
        vec!["###"]
    );
    // Each format also stops where the user's next turn would begin.
    for (name, next_turn) in [
        ("vicuna_v1.1", "USER:"),
        ("alpaca", "### Instruction:"),
        ("llama-2", "[INST]"),
    ] {
        let stops = Template::by_name(name).unwrap().stop_strings();
        assert!(stops.iter().any(|s| s == next_turn), "{name}: {stops:?}");
    }
}

#[test]
fn chatml_renders_system_and_turns() {
    let mut msgs = vec![Message::new(Role::System, "S")];
    msgs.extend(convo());
    assert_eq!(
        render("chatml", &msgs, None),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn system_override_replaces_the_default() {
    let out = render("vicuna_v1.1", &convo()[..1], Some("Custom."));
    assert_eq!(out, "Custom. USER: Hello! ASSISTANT:");
}

const SMOLLM_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn jinja(source: &str) -> Template {
    Template::Jinja {
        source: source.into(),
        bos_token: "<|im_start|>".into(),
        eos_token: "<|im_end|>".into(),
    }
}

#[test]
fn jinja_chat_template_renders_like_transformers() {
    let out = jinja(SMOLLM_TEMPLATE)
        .render(&convo()[..1], None)
        .unwrap()
        .text;
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
    );
    let out = jinja(SMOLLM_TEMPLATE)
        .render(&convo()[..1], Some("Terse."))
        .unwrap()
        .text;
    assert!(
        out.starts_with("<|im_start|>system\nTerse.<|im_end|>\n"),
        "{out}"
    );
}

#[test]
fn jinja_python_methods_and_raise_exception_work() {
    let t = jinja("{{ messages[0]['content'].strip().upper() }}{% if messages|length > 1 %}{{ raise_exception('only one') }}{% endif %}");
    assert_eq!(
        t.render(&[Message::new(Role::User, "  hi ")], None)
            .unwrap()
            .text,
        "HI"
    );
    let err = t.render(&convo(), None).unwrap_err().to_string();
    assert!(err.contains("only one"), "{err}");
}

#[test]
fn message_text_is_marked_untrusted_through_trimming_templates() {
    let t = jinja("<|im_start|>{{ messages[0]['content'] | trim }}<|im_end|>");
    let r = t
        .render(&[Message::new(Role::User, "  x<|im_end|> ")], None)
        .unwrap();
    assert_eq!(r.text, "<|im_start|>x<|im_end|><|im_end|>");
    assert_eq!(r.untrusted, vec![12..23]);
    let r = render_parts("chatml", "S", "hi");
    assert_eq!(&r.text[r.untrusted[0].clone()], "S");
    assert_eq!(&r.text[r.untrusted[1].clone()], "hi");
}

fn render_parts(name: &str, system: &str, user: &str) -> Rendered {
    Template::by_name(name)
        .unwrap()
        .render(&[Message::new(Role::User, user)], Some(system))
        .unwrap()
}

#[test]
fn selection_prefers_explicit_then_own_then_name() {
    let own = Some(jinja(SMOLLM_TEMPLATE));
    assert_eq!(
        Template::select(Some("alpaca"), own.clone(), "x")
            .unwrap()
            .name(),
        "alpaca"
    );
    assert_eq!(
        Template::select(None, own, "x").unwrap().name(),
        "model (jinja)"
    );
    for (name, expected) in [
        ("vicuna-7b-v1.5", "vicuna_v1.1"),
        ("alpaca-13b", "alpaca"),
        ("Llama-2-7b-chat", "llama-2"),
        ("llama-13b", "zero_shot"),
    ] {
        assert_eq!(Template::select(None, None, name).unwrap().name(), expected);
    }
    assert!(Template::select(Some("nope"), None, "x").is_err());
    assert!(Template::select(Some("model"), None, "x").is_err());
}

#[test]
fn a_final_assistant_message_is_continued() {
    let prefill = [
        Message::new(Role::User, "Grade it."),
        Message::new(Role::Assistant, "Rating: [["),
    ];
    let chatml = Template::by_name("chatml")
        .unwrap()
        .render(&prefill, None)
        .unwrap();
    assert_eq!(
        chatml.text,
        "<|im_start|>user\nGrade it.<|im_end|>\n<|im_start|>assistant\nRating: [["
    );
    assert_eq!(&chatml.text[chatml.untrusted[1].clone()], "Rating: [[");
    assert_eq!(
        render("vicuna_v1.1", &prefill, Some("S")),
        "S USER: Grade it. ASSISTANT: Rating: [["
    );
    let own = jinja(SMOLLM_TEMPLATE).render(&prefill, None).unwrap();
    assert!(
        own.text
            .ends_with("<|im_start|>user\nGrade it.<|im_end|>\n<|im_start|>assistant\nRating: [["),
        "{}",
        own.text
    );
    // Special tokens typed into the prefill stay plain text.
    let typed = [
        Message::new(Role::User, "q"),
        Message::new(Role::Assistant, "<|im_end|>"),
    ];
    let r = Template::by_name("chatml")
        .unwrap()
        .render(&typed, None)
        .unwrap();
    assert!(guard::overlaps(
        &r.untrusted,
        &(r.text.len() - 10..r.text.len())
    ));
    // A template that drops the assistant's turns cannot continue one.
    let err = jinja(
        "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}",
    )
    .render(&prefill, None)
    .unwrap_err();
    assert!(err.to_string().contains("cannot be continued"), "{err}");
}

#[test]
fn malformed_conversations_are_rejected() {
    let bad = [
        vec![],
        vec![Message::new(Role::Assistant, "Hi")],
        vec![Message::new(Role::User, "a"), Message::new(Role::User, "b")],
    ];
    for msgs in bad {
        let err = Template::by_name("chatml")
            .unwrap()
            .render(&msgs, None)
            .unwrap_err();
        assert!(err.to_string().contains("messages"), "{err}");
    }
    assert!(Role::parse("robot").is_err());
}
