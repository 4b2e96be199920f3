"""Evaluation and media: metrics (PSNR/SSIM/L1/LPIPS), render sets, PLY export, grids, mp4s."""
