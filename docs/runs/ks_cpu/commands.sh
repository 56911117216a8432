ssl-pde-generate pde=ks split=train num_samples=1024 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-generate pde=ks split=valid num_samples=128 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-generate pde=ks split=test num_samples=256 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-pretrain experiment=ks_vicreg data.dir=/work/runs/reproduce_cpu/ks/data run_dir=/work/runs/reproduce_cpu/ks/pretrain_s0 seed=0 trainer=cpu trainer.max_epochs=60 'encoder.widths=[32,64,128,256]' augment.crop_t=32 augment.crop_x=64 data.batch_size=128 data.num_workers=0 optim.lr=1.0e-3 logger=csv
ssl-pde-pretrain experiment=ks_vicreg data.dir=/work/runs/reproduce_cpu/ks/data run_dir=/work/runs/reproduce_cpu/ks/pretrain_s1 seed=1 trainer=cpu trainer.max_epochs=60 'encoder.widths=[32,64,128,256]' augment.crop_t=32 augment.crop_x=64 data.batch_size=128 data.num_workers=0 optim.lr=1.0e-3 logger=csv
ssl-pde-pretrain experiment=ks_vicreg data.dir=/work/runs/reproduce_cpu/ks/data run_dir=/work/runs/reproduce_cpu/ks/pretrain_s2 seed=2 trainer=cpu trainer.max_epochs=60 'encoder.widths=[32,64,128,256]' augment.crop_t=32 augment.crop_x=64 data.batch_size=128 data.num_workers=0 optim.lr=1.0e-3 logger=csv
ssl-pde-generate pde=ks split=train num_samples=1024 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-generate pde=ks split=valid num_samples=128 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-generate pde=ks split=test num_samples=256 out_dir=/work/runs/reproduce_cpu/ks/data device=cpu
ssl-pde-eval 'ckpt=[/work/runs/reproduce_cpu/ks/pretrain_s0/encoder.pt,/work/runs/reproduce_cpu/ks/pretrain_s1/encoder.pt,/work/runs/reproduce_cpu/ks/pretrain_s2/encoder.pt]' data.dir=/work/runs/reproduce_cpu/ks/data out_dir=/work/runs/reproduce_cpu/ks/eval_regression_n64_s012 device=cpu regression.n_labels=64
ssl-pde-eval 'ckpt=[/work/runs/reproduce_cpu/ks/pretrain_s0/encoder.pt,/work/runs/reproduce_cpu/ks/pretrain_s1/encoder.pt,/work/runs/reproduce_cpu/ks/pretrain_s2/encoder.pt]' data.dir=/work/runs/reproduce_cpu/ks/data out_dir=/work/runs/reproduce_cpu/ks/eval_regression_n256_s012 device=cpu regression.n_labels=256
