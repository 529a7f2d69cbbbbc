mod apiserver;
mod chart;
mod cli;
mod crds;
mod operator;
mod rke2;
mod support;
mod leader;
