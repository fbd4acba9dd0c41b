fn main() {
    std::process::exit(stackdeploy::run(std::env::args_os()));
}
