fn main() -> std::process::ExitCode {
    qcert_portal::cli::main()
}
