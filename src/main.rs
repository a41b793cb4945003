fn main() -> std::process::ExitCode {
    refactor_ai::run(std::env::args_os())
}
