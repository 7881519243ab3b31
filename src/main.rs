fn main() {
    for crd in windflow::api::crds() {
        println!("---\n{}", serde_yaml::to_string(&crd).unwrap());
    }
}
