//! Chat templates: the model's own `tokenizer.chat_template` (Jinja, as Hugging Face renders
//! it: `trim_blocks` and `lstrip_blocks` on, Python string methods, `raise_exception`,
//! `tojson`), rendered with minijinja. A model without a template gets ChatML
//! (`models/chatml.jinja`) with a warning.

use minijinja::{Environment, Error, ErrorKind, context};

use super::Message;

/// The fallback for models whose metadata has no template.
const CHATML: &str = include_str!("../../models/chatml.jinja");

pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// `source` is the model's template, if it has one.
    pub(crate) fn new(
        source: Option<&str>,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|error| error.to_string())?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_string())
            .map_err(|error| describe(&error))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The prompt text for `messages`, ending where the assistant's answer begins.
    pub(crate) fn render(&self, messages: &[Message]) -> Result<String, String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|error| describe(&error))?;
        template
            .render(context! {
                messages => minijinja::value::Serde(messages),
                add_generation_prompt => true,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
                tools => minijinja::Value::UNDEFINED,
            })
            .map_err(|error| describe(&error))
    }
}

fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Some templates put today's date in the system prompt; a fixed format keeps it simple.
fn strftime_now(format: String) -> String {
    let (year, month, day) =
        crate::time::civil_from_days((crate::time::unix_now() / 86_400) as i64);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format
        .replace("%Y", &year.to_string())
        .replace("%m", &format!("{month:02}"))
        .replace("%d", &format!("{day:02}"))
        .replace("%B", MONTHS[(month - 1) as usize])
        .replace("%b", &MONTHS[(month - 1) as usize][..3])
}

/// minijinja's message plus where in the template it happened.
fn describe(error: &Error) -> String {
    match error.line() {
        Some(line) => format!("{error} (template line {line})"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Role;

    fn messages() -> Vec<Message> {
        vec![
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Hi"),
        ]
    }

    #[test]
    fn chatml_fallback_renders_every_message_and_opens_the_answer() {
        let template = ChatTemplate::new(None, "", "").expect("the embedded template compiles");
        assert_eq!(
            template.render(&messages()).expect("renders"),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn templates_get_python_methods_and_raise_exception() {
        let source = "{% for m in messages %}{% if m.role == 'system' and not loop.first %}\
                      {{ raise_exception('system must come first') }}{% endif %}\
                      [{{ m.content.strip().upper() }}]{% endfor %}";
        let template = ChatTemplate::new(Some(source), "<s>", "</s>").expect("compiles");
        assert_eq!(
            template.render(&messages()).expect("renders"),
            "[BE BRIEF.][HI]"
        );
        let mut wrong = messages();
        wrong.reverse();
        let error = template.render(&wrong).expect_err("the template raises");
        assert!(error.contains("system must come first"), "{error}");
    }

    /// The catalog models' own templates (taken from their GGUF files) render exactly as
    /// Jinja2 renders them for Hugging Face (`tests/fixtures/llm/templates/render.py`).
    #[test]
    fn model_templates_render_as_jinja2_does() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/templates");
        let cases: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("cases.json")).expect("cases.json"),
        )
        .expect("JSON");
        let cases = cases.as_array().expect("a list of cases");
        assert_eq!(cases.len(), 6);
        for case in cases {
            let name = case["template"].as_str().expect("a template name");
            let source = std::fs::read_to_string(dir.join(name)).expect("the template");
            let messages: Vec<Message> =
                serde_json::from_value(case["messages"].clone()).expect("messages");
            let template = ChatTemplate::new(Some(&source), "", "").expect("compiles");
            assert_eq!(
                template.render(&messages).expect("renders"),
                case["expected"].as_str().expect("the expected prompt"),
                "{name} with {} messages",
                messages.len()
            );
        }
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        assert!(ChatTemplate::new(Some("{% for m in messages %}"), "", "").is_err());
    }
}
