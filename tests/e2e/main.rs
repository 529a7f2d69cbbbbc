mod admission;
mod apiserver;
mod argocd_health;
mod chart;
mod cli;
mod crds;
#[cfg(feature = "eks")]
mod eks;
mod fleet;
mod kubeconfig;
mod kubectl_scenario;
mod leader;
mod members;
mod operator;
mod peers;
mod rke2;
mod stacks;
mod support;
