mod admission;
mod apiserver;
mod argocd_health;
mod bad_input;
mod chart;
mod cli;
mod crds;
#[cfg(feature = "eks")]
mod eks;
mod kubeconfig;
mod kubectl_scenario;
mod leader;
mod operator;
mod peers;
mod rke2;
mod stacks;
mod support;
