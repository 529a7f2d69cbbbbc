mod chart;
mod crds;
mod rke2;
mod apiserver;
