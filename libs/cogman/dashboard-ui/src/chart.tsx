import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { CountBucket } from './api';

/** Tasks created per bucket and those failed, as lines (uPlot, loaded with this chunk only). */
export default function Chart({ buckets }: { buckets: CountBucket[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = ref.current!;
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    const axis = {
      stroke: getComputedStyle(element).color,
      grid: { stroke: dark ? '#333' : '#e5e5e5' },
    };
    const data: uPlot.AlignedData = [
      buckets.map((b) => new Date(b.from).getTime() / 1000),
      buckets.map((b) => b.total),
      buckets.map((b) => b.counts.failed ?? 0),
    ];
    const plot = new uPlot(
      {
        width: Math.max(300, element.clientWidth),
        height: 220,
        series: [
          {},
          { label: 'Created', stroke: '#3b82f6', width: 2, fill: 'rgba(59,130,246,0.12)' },
          { label: 'Failed', stroke: '#dc2626', width: 2, dash: [6, 3] },
        ],
        axes: [axis, axis],
      },
      data,
      element,
    );
    const resize = () => plot.setSize({ width: Math.max(300, element.clientWidth), height: 220 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [buckets]);
  return <div ref={ref} class="chart" role="img" aria-label="Tasks created and failed over time" />;
}
