"""Pure geometry: boxes, gaps, edge distances, the surface, the scale and the measured scene."""
