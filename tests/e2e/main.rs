mod chart;
mod crds;
mod operator;
mod support;
mod apiserver;
mod rke2;
