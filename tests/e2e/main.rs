mod chart;
mod rke2;
