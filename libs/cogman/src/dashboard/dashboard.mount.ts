import { Logger, type DynamicModule } from '@nestjs/common';
import { DashboardAssets, dashboardDirectory } from './dashboard-assets';
import { DashboardController } from './dashboard.controller';

/**
 * Adds the dashboard to Cogman's module definition (after the REST API, which it needs): its
 * controller, under the REST API's route prefix, and the built app it serves.
 */
export function mountDashboard(definition: DynamicModule): DynamicModule {
  return {
    ...definition,
    controllers: [...(definition.controllers ?? []), DashboardController],
    providers: [
      ...(definition.providers ?? []),
      {
        provide: DashboardAssets,
        useFactory: () => {
          const directory = dashboardDirectory();
          if (directory) return new DashboardAssets(directory);
          new Logger('Cogman:Dashboard').error(
            'The dashboard was not built (no dist/dashboard/ui/index.html): run npm run build',
          );
          return null;
        },
      },
    ],
  };
}
