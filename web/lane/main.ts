import { createApp } from 'vue';
import LaneApp from './LaneApp.vue';

createApp(LaneApp).mount('#app');
