//! Leaderboard categories: tags a battle gets from its first prompt when it is voted on
//! (coding, math, multi-turn, longer query, language), and the "hard prompt" criteria an
//! optional LLM labeller judges, as LMArena's categories do.

use std::sync::LazyLock;

use regex::Regex;

/// The first prompt contains code or asks about programming.
pub const CODING: &str = "coding";
/// The first prompt is a math problem.
pub const MATH: &str = "math";
/// The battle went on for two turns or more.
pub const MULTI_TURN: &str = "multi_turn";
/// The first prompt is at least `LONG_QUERY_TOKENS` tokens long.
pub const LONG_QUERY: &str = "long_query";
/// The first prompt is not in English.
pub const NON_ENGLISH: &str = "non_english";
/// The labeller found at least `HARD_THRESHOLD` of the seven criteria in the first prompt.
pub const HARD_PROMPT: &str = "hard_prompt";

/// LMArena's "longer query" threshold.
pub const LONG_QUERY_TOKENS: usize = 500;

/// Tokens of `text` by OpenAI's rule of thumb (four characters a token): the tag must not
/// depend on which two models happened to answer, and LMArena's own count is tiktoken's.
pub fn estimated_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

static CODE_BLOCK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"```|~~~").unwrap_or_else(|e| panic!("{e}")));
static CODE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^\s*(def \w+\(|class \w+[:(]|import \w|from \w+ import|#include\s*<|function \w+\(|(const|let|var) \w+\s*=|public (static )?\w+|fn \w+\(|package \w+|<\?php|SELECT .+ FROM|CREATE TABLE|for \(.*;.*;|while \(.+\)\s*\{|if \(.+\)\s*\{|\}\s*else|return .+;$)",
    )
    .unwrap_or_else(|e| panic!("{e}"))
});
static CODE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(code|coding|program(ming)?|python|javascript|typescript|java|c\+\+|c#|rust|golang|kotlin|swift|php|ruby|sql|regex|bash|shell script|compiler?|debug(ging)?|stack trace|exception|algorithm|function|api|json|html|css|git|docker|kubernetes|linux command)\b",
    )
    .unwrap_or_else(|e| panic!("{e}"))
});
static MATH_MARK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(\\(frac|int|sum|sqrt|cdot|times|pi|infty|lim|binom)\b|\$[^$\n]+\$|\d\s*[-+*/^×÷=]\s*\(?-?\d|\b[a-z]\s*\^\s*\d|\b\d*[a-z]\s*[-+]\s*\d+\s*=)",
    )
    .unwrap_or_else(|e| panic!("{e}"))
});
static MATH_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(equations?|solve for|integral|derivative|differentiate|probability|theorem|prove that|calculate|algebra|geometry|trigonometry|polynomial|factorial|prime numbers?|matrix|matrices|arithmetic|logarithm|percentage of|how many ways)\b",
    )
    .unwrap_or_else(|e| panic!("{e}"))
});

/// Whether `prompt` has code in it or asks about programming: a code block, a line that
/// reads as code, or a programming word.
pub fn is_coding(prompt: &str) -> bool {
    CODE_BLOCK.is_match(prompt) || CODE_LINE.is_match(prompt) || CODE_WORD.is_match(prompt)
}

/// Whether `prompt` is a math problem: LaTeX, an arithmetic expression, or a math word.
pub fn is_math(prompt: &str) -> bool {
    MATH_MARK.is_match(prompt) || MATH_WORD.is_match(prompt)
}

/// The language of `prompt` as a category name (`english`, `chinese`, `french`, ...), when
/// it can be told; short or mixed prompts often cannot.
pub fn language(prompt: &str) -> Option<String> {
    let info = whatlang::detect(prompt)?;
    if !info.is_reliable() && info.confidence() < 0.5 {
        return None;
    }
    Some(match info.lang() {
        // LMArena's name for it.
        whatlang::Lang::Cmn => "chinese".to_string(),
        lang => lang.eng_name().to_lowercase(),
    })
}

/// The categories of a battle whose first prompt is `first_prompt`, voted on after `turns`
/// turns, sorted. The language, when told, is one of them, with `non_english` beside any
/// language but English.
pub fn categorize(first_prompt: &str, turns: i64) -> Vec<String> {
    let mut tags = Vec::new();
    if is_coding(first_prompt) {
        tags.push(CODING.to_string());
    }
    if is_math(first_prompt) {
        tags.push(MATH.to_string());
    }
    if turns >= 2 {
        tags.push(MULTI_TURN.to_string());
    }
    if estimated_tokens(first_prompt) >= LONG_QUERY_TOKENS {
        tags.push(LONG_QUERY.to_string());
    }
    if let Some(lang) = language(first_prompt) {
        if lang != "english" {
            tags.push(NON_ENGLISH.to_string());
        }
        tags.push(lang);
    }
    tags.sort();
    tags
}

/// The language among a vote's category `tags` (the one tag no fixed category has).
pub fn language_of(tags: &[String]) -> Option<&str> {
    const FIXED: [&str; 6] = [
        CODING,
        MATH,
        MULTI_TURN,
        LONG_QUERY,
        NON_ENGLISH,
        HARD_PROMPT,
    ];
    tags.iter().map(String::as_str).find(|t| !FIXED.contains(t))
}

/// Whether `name` can be a category: lower-case letters, digits and `_`, 1 to 40 of them
/// (it travels in URLs and lands on the page).
pub fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The seven criteria of LMArena's hard prompts (Arena-Hard's `criteria_v0.1`), in order.
pub const HARD_CRITERIA: [&str; 7] = [
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world",
];

/// A prompt meeting at least this many criteria is a hard prompt (LMArena's threshold).
pub const HARD_THRESHOLD: usize = 6;

/// The labeller's instructions: LMArena's hard-prompt system prompt.
pub const HARD_PROMPT_SYSTEM: &str = "Your task is to evaluate how well the following input prompts can assess the capabilities of advanced AI assistants.

For the input prompt, please analyze it based on the following 7 criteria.
1. Specificity: Does the prompt ask for a specific output, such as code, a mathematical solution, a logical simplification, a problem-solving strategy, or a hardware setup recommendation? This specificity allows the AI to demonstrate its ability to understand and generate precise responses.
2. Domain Knowledge: Does the prompt cover a specific domain, such as programming, mathematics, logic, problem-solving, or hardware setup? Prompts spanning a range of topics test the AI's breadth of knowledge and its ability to apply that knowledge to different domains.
3. Complexity: Does the prompt vary in complexity, from straightforward tasks to more complex, multi-step problems? This allows evaluators to assess the AI's capability to handle problems of varying difficulty.
4. Problem-Solving Skills: Does the prompt directly involves the AI to demonstrate active problem-solving skills, such systemically coming up with a solution for a specific setup instead of regurgitating an existing fact? This tests the AI's ability to apply logical reasoning and provide practical solutions.
5. Creativity: Does the prompt involve a level of creativity in approaching the problem? This criterion tests the AI's ability to provide tailored solutions that take into account the user's specific needs and limitations.
6. Technical Accuracy: Does the prompt require technical accuracy in the response? This allows evaluators to assess the AI's precision and correctness in technical fields.
7. Real-world Application: Does the prompt relate to real-world applications, such as setting up a functional system or writing code for a practical use case? This tests the AI's ability to provide practical and actionable information that could be implemented in real-life scenarios.

You must list the criteria numbers that the prompt satisfies in the format of a Python array. For example, \"[...]\". Do not explain your choice.";

/// The labeller's message for `prompt`.
pub fn hard_prompt_message(prompt: &str) -> String {
    format!("<|User Prompt|>\n{prompt}")
}

static CRITERIA_LIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\s*(\d+(\s*,\s*\d+)*)?\s*\]").unwrap_or_else(|e| panic!("{e}"))
});

/// The criteria the labeller's `reply` lists (its last `[...]` of numbers 1 to 7), or None
/// when it lists none in that form or names a number outside 1..7.
pub fn parse_criteria(reply: &str) -> Option<[bool; 7]> {
    let list = CRITERIA_LIST.find_iter(reply).last()?;
    let inner = list.as_str().trim_matches(|c| c == '[' || c == ']');
    let mut met = [false; 7];
    for n in inner.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let i: usize = n.parse().ok()?;
        *met.get_mut(i.checked_sub(1)?)? = true;
    }
    Some(met)
}

/// Whether criteria `met` make a hard prompt.
pub fn is_hard(met: &[bool; 7]) -> bool {
    met.iter().filter(|m| **m).count() >= HARD_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_and_math_prompts_are_told_from_others() {
        for p in [
            "Write a Python function that reverses a linked list",
            "Why does this fail?\n```\nx = [1, 2\n```",
            "def f(x):\n    return x * 2\nwhat does it print for 3?",
            "How do I undo a git commit?",
            "SELECT name FROM users WHERE id = 3 returns nothing, why",
        ] {
            assert!(is_coding(p), "{p}");
        }
        for p in [
            "What is the capital of France?",
            "Write a poem about autumn",
            "Hello there",
        ] {
            assert!(!is_coding(p), "{p}");
            assert!(!is_math(p), "{p}");
        }
        for p in [
            "What is 17 * 23?",
            "Solve for x: 3x + 5 = 20",
            "Compute $\\int_0^1 x^2 dx$",
            "What is the probability of two sixes with two dice?",
            "Find the derivative of x^3",
        ] {
            assert!(is_math(p), "{p}");
        }
    }

    #[test]
    fn battles_get_turn_length_and_language_tags() {
        assert_eq!(
            categorize("What is the capital of France and why?", 1),
            ["english"]
        );
        assert_eq!(
            categorize("What is the capital of France and why?", 3),
            ["english", "multi_turn"]
        );
        let long = "Please summarise the following report about rivers. ".repeat(45);
        assert!(estimated_tokens(&long) >= LONG_QUERY_TOKENS);
        assert!(categorize(&long, 1).contains(&LONG_QUERY.to_string()));
        let fr = categorize(
            "Quelle est la capitale de la France, et pourquoi est-elle si belle ?",
            1,
        );
        assert_eq!(fr, ["french", "non_english"]);
        assert_eq!(
            categorize("请用中文解释一下量子计算的基本原理是什么", 1),
            ["chinese", "non_english"]
        );
        // Too short to tell: no language rather than a guess.
        assert!(language("ok").is_none());
    }

    #[test]
    fn category_names_are_safe_for_urls_and_pages() {
        assert!(valid_name("coding") && valid_name("non_english"));
        for bad in [
            "",
            "Coding",
            "a b",
            "<script>",
            "x".repeat(41).as_str(),
            "é",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_labellers_criteria_are_read_from_its_last_list() {
        assert_eq!(
            parse_criteria("[1, 2, 3, 4, 5, 6]").map(|m| is_hard(&m)),
            Some(true)
        );
        let m = parse_criteria("Thinking... [1] no wait: [1,2,3,6,7]").unwrap();
        assert_eq!(m, [true, true, true, false, false, true, true]);
        assert!(!is_hard(&m));
        assert_eq!(parse_criteria("[]"), Some([false; 7]));
        assert_eq!(parse_criteria("none of them"), None);
        assert_eq!(parse_criteria("[0, 3]"), None);
        assert_eq!(parse_criteria("[8]"), None);
        assert_eq!(HARD_CRITERIA.len(), 7);
    }

    #[test]
    fn a_votes_language_is_its_one_unfixed_tag() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(language_of(&tags(&["coding", "english"])), Some("english"));
        let french = categorize("Quelle est la capitale de la France, et pourquoi ?", 3);
        assert_eq!(language_of(&french), Some("french"));
        assert_eq!(
            language_of(&tags(&["hard_prompt", "math", "multi_turn"])),
            None
        );
    }
}
